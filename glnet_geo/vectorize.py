"""Class raster -> GIS polygons, block by block, with regions cut by blocks merged back.

:func:`vectorize_raster` turns a single-band integer class raster of any size
(glnet-geo's masks or any other tool's) into one polygon feature per connected
region, with ``class_id``, ``class_name``, ``area_m2`` and, when a
probabilities raster is given, ``confidence``.

How it works (memory follows the block size, the raster's width and the
largest region, never the raster's area):

1. The raster is read in square blocks (``block_size`` px), row by row, with
   its dataset mask: nodata and masked pixels, and pixels of classes not kept,
   produce no polygon.
2. Each block is polygonized by :func:`rasterio.features.shapes` in *global
   pixel coordinates* (exact integers, so pieces from neighbouring blocks meet
   exactly along the seam).
3. A piece that touches no inner block edge is a whole region: it is finished
   and written at once. A piece that does is kept; the pixels on both sides of
   each seam (the kept pieces are rasterized along the block's edges) tell
   which pieces belong to one region (union-find). After each block row, every
   region that cannot grow into the next row is dissolved
   (:func:`glnet_geo.dissolve.dissolve`), finished and written. So one region is one
   feature however the blocks fell, and only one block row of seam pieces plus
   the pieces of regions still growing downwards are in memory (a region that
   spans the raster is one feature, and its outline is held whole).
4. Finishing: holes smaller than ``min_area`` filled, regions smaller than it
   dropped, optional right-angle regularization
   (:mod:`glnet_geo.regularize`), pixel -> map coordinates with the raster's
   transform, area in square metres.
5. Features are appended in chunks to a GeoPackage under a temporary name next
   to the output, which is renamed (GeoPackage) or streamed through Arrow into
   the requested format, then renamed: nothing half-written is ever left under
   the final name.
6. Styles (:mod:`glnet_geo.styles`): polygons categorised on ``class_name``
   with the raster's palette colours, as the default ``layer_styles`` row of
   a GeoPackage or as a QGIS ``.qml`` beside other formats. An output without
   any feature gets one warning line.

Connectivity: 4-connectivity by default (pixels that touch only at a corner
are different regions; each region is a ``Polygon``). With 8-connectivity
corner-touching pixels are one region, which is then written as a
``MultiPolygon`` whose parts touch at those corners.

Areas: in a projected CRS, the planar area times the square of the CRS's
linear unit (feet are converted); in a geographic CRS, and in Mercator CRSs
whose planar areas are meaningless away from the equator, the area in a
Lambert cylindrical equal-area projection on the raster's own datum (exact for
pixel-edge outlines, whose edges follow meridians and parallels).

Simplification (``simplify``, map units) is topology-preserving coverage
simplification (:func:`shapely.coverage_simplify`) applied to all the pieces
of a block together, nodata and dropped classes included, so neighbouring
regions keep sharing their edges. The block edges are not simplified: a
region boundary keeps one vertex where it crosses a block seam.

A raster without a CRS is refused (:class:`~glnet_geo.errors.InputError`):
polygons in pixel coordinates would land at the wrong place in any GIS.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glnet_geo.dissolve import dissolve
from glnet_geo.errors import InputError, OutputError, OutputExistsError

if TYPE_CHECKING:
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window

    from glnet_geo.styles import ClassStyle

log = logging.getLogger(__name__)

#: Side of the square blocks read and polygonized at a time, in pixels.
DEFAULT_BLOCK_SIZE = 1024
#: Complete regions are finished and written in chunks of at most this many vertices...
CHUNK_VERTICES = 500_000
#: ...or this many features.
CHUNK_FEATURES = 20_000
#: Band tag (then dataset tag) holding the class names as a JSON list.
CLASS_NAMES_TAG = "class_names"
#: Integer raster types polygonized (others: convert with ``gdal_translate -ot Int32``).
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "int32")


class Connectivity(IntEnum):
    """Which neighbouring pixels of one class form one region."""

    FOUR = 4
    """Edge neighbours only (the default of GDAL and rasterio)."""
    EIGHT = 8
    """Edge and corner neighbours."""


class VectorFormat(Enum):
    """Output formats, chosen by the output's extension or explicitly."""

    GPKG = "gpkg"
    GEOJSON = "geojson"
    SHAPEFILE = "shapefile"
    FLATGEOBUF = "flatgeobuf"
    GEOPARQUET = "geoparquet"

    @property
    def driver(self) -> str | None:
        """The OGR driver writing this format (GeoParquet is written with pyarrow)."""
        return _DRIVERS[self]

    @property
    def suffix(self) -> str:
        """The usual file extension."""
        return _SUFFIX[self]

    @classmethod
    def parse(cls, value: str | VectorFormat) -> VectorFormat:
        """Look up the format named ``value`` (case-insensitive; aliases "shp", "fgb"...).

        Raises:
            InputError: the name is unknown.

        """
        if isinstance(value, VectorFormat):
            return value
        try:
            return _ALIASES[str(value).strip().lower()]
        except KeyError:
            raise InputError(f"unknown polygon format {value!r}; expected one of "
                             f"{', '.join(f.value for f in cls)}") from None

    @classmethod
    def from_path(cls, path: Path) -> VectorFormat:
        """Tell the format of ``path`` by its extension (GeoPackage when it has none).

        Raises:
            InputError: the extension is not one of a known format.

        """
        suffix = path.suffix.lower()
        if not suffix:
            return cls.GPKG
        try:
            return _BY_SUFFIX[suffix]
        except KeyError:
            raise InputError(
                f"cannot tell the polygon format of {path.name!r} from {suffix!r}; use one of "
                f"{', '.join(sorted(_BY_SUFFIX))} or pass --format "
                f"({', '.join(f.value for f in cls)})") from None


_DRIVERS = {VectorFormat.GPKG: "GPKG", VectorFormat.GEOJSON: "GeoJSON",
            VectorFormat.SHAPEFILE: "ESRI Shapefile", VectorFormat.FLATGEOBUF: "FlatGeobuf",
            VectorFormat.GEOPARQUET: None}
_SUFFIX = {VectorFormat.GPKG: ".gpkg", VectorFormat.GEOJSON: ".geojson",
           VectorFormat.SHAPEFILE: ".shp", VectorFormat.FLATGEOBUF: ".fgb",
           VectorFormat.GEOPARQUET: ".parquet"}
_BY_SUFFIX = {**{s: f for f, s in _SUFFIX.items()}, ".json": VectorFormat.GEOJSON,
              ".geoparquet": VectorFormat.GEOPARQUET}
_ALIASES = {**{f.value: f for f in VectorFormat}, "geopackage": VectorFormat.GPKG,
            "json": VectorFormat.GEOJSON, "shp": VectorFormat.SHAPEFILE,
            "esri shapefile": VectorFormat.SHAPEFILE, "fgb": VectorFormat.FLATGEOBUF,
            "parquet": VectorFormat.GEOPARQUET}
#: Files that make up one shapefile (removed together on --overwrite).
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qpj")


class AreaMethod(Enum):
    """How ``area_m2`` is measured."""

    PLANAR = "planar"
    """Area in the raster's projected CRS, times its linear unit squared."""
    EQUAL_AREA = "equal-area"
    """Area in a cylindrical equal-area projection (geographic and Mercator CRSs)."""


# ---------------------------------------------------------------------------------------------
# Checks done before any work (``predict --polygons`` calls them before inference)
# ---------------------------------------------------------------------------------------------

def resolve_format(path: str | os.PathLike, format: str | VectorFormat | None = None
                   ) -> VectorFormat:
    """Pick the output format: ``format`` when given, else the extension of ``path``.

    Raises:
        InputError: unknown format name or extension.

    """
    if format is not None:
        return VectorFormat.parse(format)
    return VectorFormat.from_path(Path(path))


def output_files(path: Path, fmt: VectorFormat) -> list[Path]:
    """List the files an output occupies (a shapefile is several)."""
    if fmt is VectorFormat.SHAPEFILE:
        return [path.with_suffix(s) for s in _SHAPEFILE_PARTS]
    return [path]


def check_output(path: str | os.PathLike, fmt: VectorFormat, overwrite: bool = False) -> None:
    """Refuse an output that exists (without ``overwrite``) or cannot be written.

    Raises:
        OutputExistsError: the output exists and ``overwrite`` is False.
        OutputError: its directory is missing, not writable, or the path is a directory.

    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a directory; give a file name such as "
                          f"{path / ('polygons' + fmt.suffix)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {parent} is not writable; choose another -o")
    if not overwrite and path.exists():
        raise OutputExistsError(f"{path} already exists; pass --overwrite (overwrite=True) "
                                f"to replace it or choose another output")


def check_class_raster(src: rasterio.io.DatasetReader) -> None:
    """Refuse a raster that is not a georeferenced, single-band integer class raster.

    Raises:
        InputError: several bands, a non-integer type, or no CRS.

    """
    name = Path(src.name).name
    if src.count != 1:
        raise InputError(f"{name} has {src.count} bands; expected a single-band class raster "
                         f"(pick one with: gdal_translate -b 1 {name} classes.tif)")
    if src.dtypes[0] not in SUPPORTED_DTYPES:
        raise InputError(f"{name} is {src.dtypes[0]}; expected integer classes "
                         f"({', '.join(SUPPORTED_DTYPES)}); convert with: "
                         f"gdal_translate -ot Int32 {name} classes.tif")
    if src.crs is None:
        raise InputError(f"{name} has no CRS, so its polygons cannot be placed on the map; "
                         f"assign one (rio edit-info --crs EPSG:<code> {name}) and rerun")


def read_class_names(src: rasterio.io.DatasetReader) -> dict[int, str]:
    """Class names stored in a raster: the ``class_names`` tag of band 1, else of the dataset.

    The tag is a JSON list (names by class id) or object (``{"id": "name"}``).
    Returns an empty dict when neither tag holds one.
    """
    for tags in (src.tags(1), src.tags()):
        text = tags.get(CLASS_NAMES_TAG)
        if not text:
            continue
        try:
            value = json.loads(text)
            if isinstance(value, list):
                return {i: str(n) for i, n in enumerate(value)}
            if isinstance(value, dict):
                return {int(k): str(n) for k, n in value.items()}
        except (ValueError, TypeError):
            pass
        log.warning("%s: tag %s=%r is not a JSON list of names; ignored",
                    src.name, CLASS_NAMES_TAG, text[:80])
    return {}


# ---------------------------------------------------------------------------------------------
# Areas and coordinates
# ---------------------------------------------------------------------------------------------

def pixel_to_map(geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """Geometries in pixel coordinates (col, row) -> map coordinates by ``transform``."""
    import shapely

    a, b, c, d, e, f = transform[:6]
    matrix, offset = np.array([[a, d], [b, e]]), np.array([c, f])
    return shapely.transform(geoms, lambda xy: xy @ matrix + offset)


def area_method(crs: CRS) -> AreaMethod:
    """Planar areas for projected CRSs, equal-area ones for geographic and Mercator CRSs."""
    import pyproj

    if crs.is_geographic:
        return AreaMethod.EQUAL_AREA
    operation = pyproj.CRS.from_wkt(crs.to_wkt()).coordinate_operation
    method = (operation.method_name if operation else "").lower()
    if "mercator" in method and "transverse" not in method and "oblique" not in method:
        return AreaMethod.EQUAL_AREA
    return AreaMethod.PLANAR


@dataclass
class PixelAreas:
    """Square metres of geometries given in the raster's pixel coordinates.

    Args:
        crs: the raster's CRS.
        transform: the raster's affine transform.
        center: a pixel position (col, row) near the raster's middle; the
            equal-area projection is centred on its longitude.

    """

    crs: CRS
    transform: Affine
    center: tuple[float, float]
    method: AreaMethod = field(init=False)
    _factor: float = field(init=False, default=1.0)
    _to_equal_area: Callable[[np.ndarray], np.ndarray] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.method = area_method(self.crs)
        if self.method is AreaMethod.PLANAR:
            unit = self.crs.linear_units_factor[1]
            self._factor = abs(self.transform.determinant) * unit * unit
            return
        import pyproj
        from pyproj.crs import ProjectedCRS
        from pyproj.crs.coordinate_operation import LambertCylindricalEqualAreaConversion

        source = pyproj.CRS.from_wkt(self.crs.to_wkt())
        x, y = self.transform @ self.center
        lon, _ = pyproj.Transformer.from_crs(source, source.geodetic_crs,
                                             always_xy=True).transform(x, y)
        equal_area = ProjectedCRS(
            conversion=LambertCylindricalEqualAreaConversion(0.0, float(lon)),
            geodetic_crs=source.geodetic_crs)
        to_cea = pyproj.Transformer.from_crs(source, equal_area, always_xy=True)
        a, b, c, d, e, f = self.transform[:6]
        matrix, offset = np.array([[a, d], [b, e]]), np.array([c, f])

        def project(xy: np.ndarray) -> np.ndarray:
            mx = xy @ matrix + offset
            return np.column_stack(to_cea.transform(mx[:, 0], mx[:, 1]))

        self._to_equal_area = project

    def __call__(self, geoms: np.ndarray) -> np.ndarray:
        """Areas in m2 of an array of pixel-coordinate geometries."""
        import shapely

        geoms = np.asarray(geoms, dtype=object)
        if self._to_equal_area is None:
            return shapely.area(geoms) * self._factor
        return shapely.area(shapely.transform(geoms, self._to_equal_area))


# ---------------------------------------------------------------------------------------------
# Polygonizing one block
# ---------------------------------------------------------------------------------------------

@dataclass
class _Block:
    """The pieces of one block, in global pixel coordinates."""

    geometries: np.ndarray          # (n,) shapely geometries (simplified when asked)
    class_ids: np.ndarray           # (n,) int64
    pixels: np.ndarray              # (n,) float64 pixel count (= unsimplified pixel area)
    confidence: np.ndarray | None   # (n,) sum of the class probability over the piece
    on_seam: np.ndarray             # (n,) bool: touches an inner block edge
    on_bottom: np.ndarray           # (n,) bool: touches the inner bottom edge
    edges: _Edges | None            # seam pieces on the block's four edges (None: no seam piece)


@dataclass
class _Edges:
    """Piece index + 1 (0: no seam piece) of each pixel along the four edges of a block."""

    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray


def _polygonize_block(data: np.ndarray, valid: np.ndarray, window: Window, *,
                      raster_width: int, raster_height: int, connectivity: Connectivity,
                      tolerance_px: float, confidence: np.ndarray | None) -> _Block:
    """Polygonize one block into pieces, flag those on inner seams, label them.

    Args:
        data: class values of the block.
        valid: pixels to polygonize (valid data of a kept class).
        window: the block's window in the raster.
        raster_width: raster width, to tell inner seams from raster edges.
        raster_height: raster height, likewise.
        connectivity: 4 or 8.
        tolerance_px: coverage simplification tolerance in pixels (0: none).
        confidence: per-pixel confidence of the pixel's class, or None.

    """
    import rasterio.features
    import shapely
    from affine import Affine
    from rasterio.windows import Window

    offset = Affine.translation(window.col_off, window.row_off)
    if data.dtype == np.int8:
        data = data.astype(np.int16)
    found = list(rasterio.features.shapes(data, mask=valid, connectivity=int(connectivity),
                                          transform=offset))
    geoms = _objects([_polygon(g) for g, _ in found])
    class_ids = np.array([int(v) for _, v in found], dtype=np.int64)
    geoms = _make_valid(geoms)
    pixels = shapely.area(geoms) if len(geoms) else np.zeros(0)

    bounds = shapely.bounds(geoms) if len(geoms) else np.zeros((0, 4))
    c0, r0 = window.col_off, window.row_off
    c1, r1 = c0 + window.width, r0 + window.height
    on_left = (bounds[:, 0] == c0) & (c0 > 0)
    on_top = (bounds[:, 1] == r0) & (r0 > 0)
    on_right = (bounds[:, 2] == c1) & (c1 < raster_width)
    on_bottom = (bounds[:, 3] == r1) & (r1 < raster_height)
    on_seam = on_left | on_top | on_right | on_bottom

    edges = None
    if on_seam.any():
        seam = np.flatnonzero(on_seam)
        h, w = window.height, window.width
        edges = _Edges(*(_burn(geoms[seam], seam + 1, strip).ravel() for strip in (
            Window(c0, r0, w, 1), Window(c0, r1 - 1, w, 1),
            Window(c0, r0, 1, h), Window(c1 - 1, r0, 1, h))))
    conf_sum = None
    if confidence is not None:
        labels = _burn(geoms, np.arange(1, len(geoms) + 1), window)
        conf_sum = np.bincount(labels.ravel(), weights=confidence.ravel(),
                               minlength=len(geoms) + 1)[1:]

    if tolerance_px > 0 and len(geoms):
        geoms = _simplify_block(geoms, valid, offset, connectivity, tolerance_px)
    return _Block(geoms, class_ids, pixels, conf_sum, on_seam, on_bottom, edges)


def _burn(geoms: np.ndarray, values: np.ndarray, window: Window,
          band_rows: int = 32) -> np.ndarray:
    """Rasterize pixel-coordinate pieces over ``window`` (each pixel: its piece's value, or 0).

    GDAL's polygon fill visits every edge of a polygon on every row, so large,
    intricate regions are clipped to bands of ``band_rows`` rows first.
    """
    import rasterio.features
    import shapely
    from affine import Affine

    out = np.zeros((window.height, window.width), np.int32)
    c0, r0, c1 = window.col_off, window.row_off, window.col_off + window.width
    bounds = shapely.bounds(geoms)
    for top in range(0, window.height, band_rows):
        rows = min(band_rows, window.height - top)
        y0, y1 = r0 + top, r0 + top + rows
        near = np.flatnonzero((bounds[:, 1] < y1) & (bounds[:, 3] > y0)
                              & (bounds[:, 0] < c1) & (bounds[:, 2] > c0))
        if not len(near):
            continue
        clipped = shapely.clip_by_rect(geoms[near], c0, y0, c1, y1)
        hit = ~shapely.is_empty(clipped)
        if not hit.any():
            continue
        rasterio.features.rasterize(zip(clipped[hit], values[near][hit], strict=True),
                                    out=out[top:top + rows],
                                    transform=Affine.translation(c0, y0))
    return out


def _polygon(geojson: dict) -> Any:
    """Build a shapely Polygon from a GeoJSON polygon of :func:`rasterio.features.shapes`."""
    import shapely

    rings = [shapely.linearrings(np.asarray(ring)) for ring in geojson["coordinates"]]
    return shapely.polygons(rings[0], rings[1:] or None)


def _objects(items: Sequence[Any]) -> np.ndarray:
    """Make a 1-D object array of geometries (never a 2-D array of coordinates)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _make_valid(geoms: np.ndarray) -> np.ndarray:
    """``shapely.make_valid`` where needed (8-connected pieces touch themselves at corners)."""
    import shapely

    if len(geoms):
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms = geoms.copy()
            geoms[bad] = [_polygonal(g) for g in shapely.make_valid(geoms[bad])]
    return geoms


def _polygonal(geom: Any) -> Any:
    """Keep the polygonal part of a geometry (make_valid may add lines or points)."""
    import shapely

    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _simplify_block(geoms: np.ndarray, valid: np.ndarray, offset: Affine,
                    connectivity: Connectivity, tolerance_px: float) -> np.ndarray:
    """Coverage-simplify a block's pieces together with the block's empty areas.

    The empty areas (nodata, dropped classes) join the coverage so that region
    edges facing them are simplified too; the block's outer edges stay fixed,
    so pieces still meet their neighbours exactly across seams. Edges are
    densified to every pixel corner first so that the coverage is edge-matched.
    """
    import rasterio.features
    import shapely
    from shapely.geometry import shape

    voids = [shape(g) for g, _ in rasterio.features.shapes(
        valid.astype(np.uint8), mask=~valid, connectivity=int(connectivity), transform=offset)]
    coverage = np.concatenate([geoms, _make_valid(_objects(voids))])
    simplified = shapely.coverage_simplify(shapely.segmentize(coverage, 1.0), tolerance_px,
                                           simplify_boundary=False)
    # The vertices left are pixel corners: round off the densifier's float error.
    return shapely.transform(simplified[:len(geoms)], np.rint)


# ---------------------------------------------------------------------------------------------
# Merging pieces across block seams
# ---------------------------------------------------------------------------------------------

class _DisjointSet:
    """Union-find over piece ids (path halving, union by size)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.size: dict[int, int] = {}

    def add(self, item: int) -> None:
        self.parent[item] = item
        self.size[item] = 1

    def find(self, item: int) -> int:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size.pop(rb)

    def discard(self, items: Iterable[int]) -> None:
        """Forget whole groups (all their members at once)."""
        for item in items:
            del self.parent[item]
            self.size.pop(item, None)


def _seam_pairs(ids_a: np.ndarray, vals_a: np.ndarray, ids_b: np.ndarray,
                vals_b: np.ndarray, connectivity: Connectivity) -> np.ndarray:
    """Pairs of piece ids joined across a seam.

    ``ids_a[i]`` and ``ids_b[i]`` are the pieces of the two pixels facing each
    other across the seam (-1: no piece); with 8-connectivity ``a[i]`` also
    joins ``b[i-1]`` and ``b[i+1]``.
    """
    shifts = (0,) if connectivity is Connectivity.FOUR else (-1, 0, 1)
    pairs = []
    n = len(ids_a)
    for s in shifts:
        ia = slice(max(0, -s), n - max(0, s))
        ib = slice(max(0, s), n - max(0, -s))
        a, b = ids_a[ia], ids_b[ib]
        join = (a >= 0) & (b >= 0) & (vals_a[ia] == vals_b[ib])
        pairs.append(np.column_stack([a[join], b[join]]))
    return np.unique(np.concatenate(pairs), axis=0)


@dataclass
class _Regions:
    """Complete regions waiting to be finished and written (pixel coordinates)."""

    geometries: list = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    pixels: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    vertices: int = 0

    def __len__(self) -> int:
        return len(self.geometries)

    def add(self, geometry: Any, class_id: int, pixels: float, confidence: float,
            vertices: int) -> None:
        self.geometries.append(geometry)
        self.class_ids.append(class_id)
        self.pixels.append(pixels)
        self.confidence.append(confidence)
        self.vertices += vertices

    def full(self) -> bool:
        """Whether the chunk is ready to be written."""
        return len(self) >= CHUNK_FEATURES or self.vertices >= CHUNK_VERTICES


@dataclass
class _SeamPiece:
    geometry: Any
    class_id: int
    pixels: float
    confidence: float
    on_bottom: bool


def block_rows(width: int, height: int, block_size: int) -> Iterator[list[Window]]:
    """Rows of square block windows covering a raster, top to bottom, left to right."""
    from rasterio.windows import Window

    for row in range(0, height, block_size):
        yield [Window(col, row, min(block_size, width - col), min(block_size, height - row))
               for col in range(0, width, block_size)]


def _iter_regions(src: rasterio.io.DatasetReader, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 connectivity: Connectivity = Connectivity.FOUR,
                 classes: Sequence[int] | None = None, tolerance_px: float = 0.0,
                 probabilities: rasterio.io.DatasetReader | None = None
                 ) -> Iterator[_Regions]:
    """Complete regions of a class raster, in chunks, block row by block row.

    Args:
        src: the class raster (checked by :func:`check_class_raster`).
        block_size: side of the blocks read at a time, in pixels.
        connectivity: 4 or 8.
        classes: class ids to keep (None: all).
        tolerance_px: coverage simplification tolerance in pixels (0: none).
        probabilities: a raster with one band per class (or one confidence band).

    Yields:
        Regions in pixel coordinates with their class, pixel count and summed
        confidence (NaN without probabilities), in chunks of at most about
        ``CHUNK_VERTICES`` vertices or ``CHUNK_FEATURES`` features.

    """
    import shapely

    from glnet_geo.io.reader import reading

    width, height = src.width, src.height
    keep = None if classes is None else np.asarray(sorted(set(classes)))
    ids = _DisjointSet()
    seam_pieces: dict[int, _SeamPiece] = {}
    next_id = 0
    above_ids = np.full(width, -1, np.int64)    # pieces on the last pixel row of the row above
    above_vals = np.zeros(width, np.int64)
    done = _Regions()
    rows = list(block_rows(width, height, block_size))
    for r, row in enumerate(rows):
        below_ids = np.full(width, -1, np.int64)
        below_vals = np.zeros(width, np.int64)
        left_ids = left_vals = None
        row_pieces: list[int] = []
        for window in row:
            with reading(src, window, "class raster"):
                data = src.read(1, window=window)
                valid = src.read_masks(1, window=window) > 0
            if keep is not None:
                valid &= np.isin(data, keep)
            conf = None if probabilities is None else _confidence(probabilities, window, data)
            block = _polygonize_block(data, valid, window, raster_width=width,
                                      raster_height=height, connectivity=connectivity,
                                      tolerance_px=tolerance_px, confidence=conf)
            conf_sum = (block.confidence if block.confidence is not None
                        else np.full(len(block.class_ids), np.nan))
            # Whole regions go out at once; seam pieces get a global id.
            gid = np.full(len(block.class_ids) + 1, -1, np.int64)
            vertices = shapely.get_num_coordinates(block.geometries)
            for i in range(len(block.class_ids)):
                if not block.on_seam[i]:
                    done.add(block.geometries[i], int(block.class_ids[i]), block.pixels[i],
                             conf_sum[i], int(vertices[i]))
                    if done.full():
                        yield done
                        done = _Regions()
                    continue
                seam_pieces[next_id] = _SeamPiece(block.geometries[i], int(block.class_ids[i]),
                                                  block.pixels[i], conf_sum[i],
                                                  bool(block.on_bottom[i]))
                ids.add(next_id)
                row_pieces.append(next_id)
                gid[i + 1] = next_id
                next_id += 1
            edges = block.edges or _Edges(*(np.zeros(n, np.int32) for n in (
                window.width, window.width, window.height, window.height)))
            vals = data.astype(np.int64)
            c0, c1 = window.col_off, window.col_off + window.width
            # Join with the block on the left (same rows) ...
            if left_ids is not None:
                for a, b in _seam_pairs(left_ids, left_vals, gid[edges.left], vals[:, 0],
                                        connectivity):
                    ids.union(int(a), int(b))
            # ... and with the row above, one pixel wider on each side for corners.
            if r > 0:
                lo, hi = max(c0 - 1, 0), min(c1 + 1, width)
                top_ids = np.full(hi - lo, -1, np.int64)
                top_vals = np.zeros(hi - lo, np.int64)
                top_ids[c0 - lo:c0 - lo + window.width] = gid[edges.top]
                top_vals[c0 - lo:c0 - lo + window.width] = vals[0]
                for a, b in _seam_pairs(above_ids[lo:hi], above_vals[lo:hi], top_ids, top_vals,
                                        connectivity):
                    ids.union(int(a), int(b))
            left_ids, left_vals = gid[edges.right], vals[:, -1]  # gid[0] = -1: no piece
            below_ids[c0:c1], below_vals[c0:c1] = gid[edges.bottom], vals[-1]
        # Regions that cannot reach the next block row are complete: dissolve them.
        last = r == len(rows) - 1
        growing = set() if last else {ids.find(p) for p in row_pieces
                                      if seam_pieces[p].on_bottom}
        groups: dict[int, list[int]] = defaultdict(list)
        for p in seam_pieces:
            root = ids.find(p)
            if root not in growing:
                groups[root].append(p)
        for members in groups.values():
            pieces = [seam_pieces.pop(p) for p in members]
            ids.discard(members)
            geometry = pieces[0].geometry
            if len(pieces) > 1 and connectivity is Connectivity.FOUR:
                geometry = dissolve([p.geometry for p in pieces], block_size=block_size,
                                    width=width, height=height)
            elif len(pieces) > 1:  # 8-connected parts may nest: a general union
                geometry = shapely.simplify(shapely.union_all([p.geometry for p in pieces]),
                                            0.0, preserve_topology=False)
            class_id = pieces[0].class_id
            pixels = sum(p.pixels for p in pieces)
            confidence = sum(p.confidence for p in pieces)
            del pieces  # before yielding: a large region is then held once
            done.add(geometry, class_id, pixels, confidence,
                     shapely.get_num_coordinates(geometry))
            if done.full():
                yield done
                done = _Regions()
        above_ids, above_vals = below_ids, below_vals
    if len(done):
        yield done


def _confidence(probabilities: rasterio.io.DatasetReader, window: Window,
                data: np.ndarray) -> np.ndarray:
    """Per-pixel confidence: the probability band of each pixel's class (0..1)."""
    from glnet_geo.io.reader import reading

    with reading(probabilities, window, "probabilities raster"):
        probs = probabilities.read(window=window)
    if probs.shape[0] == 1:
        conf = probs[0].astype(np.float64)
    else:
        index = np.clip(data.astype(np.int64), 0, probs.shape[0] - 1)
        conf = np.take_along_axis(probs, index[None], axis=0)[0].astype(np.float64)
        conf[(data < 0) | (data >= probs.shape[0])] = np.nan
    if np.issubdtype(probs.dtype, np.integer):
        conf /= np.iinfo(probs.dtype).max
    return conf


# ---------------------------------------------------------------------------------------------
# Finishing regions: min-area, regularization, map coordinates, attributes
# ---------------------------------------------------------------------------------------------

@dataclass
class _Finisher:
    """Turns complete pixel-space regions into output features."""

    transform: Affine
    crs: CRS
    areas: PixelAreas
    class_names: dict[int, str]
    min_area: float
    regularize: bool
    connectivity: Connectivity
    with_confidence: bool

    def columns(self) -> dict[str, str]:
        """Output attribute names and dtypes."""
        out = {"class_id": "int32", "class_name": "object", "area_m2": "float64"}
        if self.with_confidence:
            out["confidence"] = "float64"
        return out

    @property
    def geometry_type(self) -> str:
        """Polygon with 4-connectivity, MultiPolygon with 8."""
        return "Polygon" if self.connectivity is Connectivity.FOUR else "MultiPolygon"

    def __call__(self, regions: _Regions) -> gpd.GeoDataFrame:
        """Finish a chunk of regions (consumed: its geometries are moved out)."""
        import geopandas as gpd
        import pandas as pd
        import shapely

        geoms = _objects(regions.geometries)
        regions.geometries.clear()
        class_ids = np.asarray(regions.class_ids, dtype=np.int64)
        pixels = np.asarray(regions.pixels, dtype=np.float64)
        conf = np.asarray(regions.confidence, dtype=np.float64)
        if self.min_area > 0:
            geoms = _objects([_fill_holes(g, self.min_area, self.areas) for g in geoms])
            keep = self.areas(geoms) >= self.min_area
            geoms, class_ids, pixels, conf = geoms[keep], class_ids[keep], pixels[keep], conf[keep]
        if self.regularize and len(geoms):
            from glnet_geo.regularize import regularize_polygon

            geoms = _make_valid(_objects([regularize_polygon(g) for g in geoms]))
        if self.connectivity is Connectivity.FOUR:
            geoms = _objects([_single(g) for g in geoms])
        keep = ~shapely.is_empty(geoms)
        geoms, class_ids, pixels, conf = geoms[keep], class_ids[keep], pixels[keep], conf[keep]
        area = self.areas(geoms) if len(geoms) else np.zeros(0)
        data = {
            "class_id": pd.Series(class_ids, dtype="int32"),
            "class_name": pd.Series([self.class_names.get(int(c), f"class_{c}")
                                     for c in class_ids], dtype="object"),
            "area_m2": pd.Series(area, dtype="float64"),
        }
        if self.with_confidence:
            data["confidence"] = pd.Series(conf / np.maximum(pixels, 1), dtype="float64")
        geoms = pixel_to_map(geoms, self.transform) if len(geoms) else geoms
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=self.crs.to_wkt()))


def _fill_holes(geom: Any, min_area: float, areas: PixelAreas) -> Any:
    """``geom`` with the holes smaller than ``min_area`` m2 filled."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    if geom.geom_type == "MultiPolygon":
        return MultiPolygon([_fill_holes(p, min_area, areas) for p in geom.geoms])
    if geom.geom_type != "Polygon" or not geom.interiors:
        return geom
    rings = list(geom.interiors)
    keep = areas(shapely.polygons(rings)) >= min_area
    return Polygon(geom.exterior, [r for r, k in zip(rings, keep, strict=True) if k])


def _single(geom: Any) -> Any:
    """Return a Polygon for a 4-connected region (largest part if repairs split it)."""
    if geom.geom_type == "Polygon":
        return geom
    parts = sorted(getattr(geom, "geoms", []), key=lambda p: p.area, reverse=True)
    if not parts:
        return geom
    if len(parts) > 1:
        log.warning("a repaired region split into %d parts; kept the largest (%.1f of %.1f "
                    "px2)", len(parts), parts[0].area, geom.area)
    return parts[0]


# ---------------------------------------------------------------------------------------------
# Writing: chunks into a temporary GeoPackage, then one rename or one streamed conversion
# ---------------------------------------------------------------------------------------------

class _StagedOutput:
    """Features appended to a temporary GeoPackage next to ``path``, published at the end.

    Publishing renames the GeoPackage (GPKG output) or streams it, through
    Arrow record batches, into the output format under another temporary name,
    which is then renamed. Temporary files are removed on failure.
    """

    def __init__(self, path: Path, fmt: VectorFormat, geometry_type: str,
                 columns: dict[str, str], crs: CRS) -> None:
        self.path, self.fmt = path, fmt
        self.geometry_type, self.columns, self.crs = geometry_type, columns, crs
        self.layer = path.stem
        from glnet_geo.io.staging import Staging

        # also removes what an ended (killed) run left beside the same output
        self._lease = Staging(path)
        self.staging = self._lease.path(".tmp.gpkg")
        self.converted = self._lease.path(".tmp")
        self.count = 0
        self._started = False

    def __enter__(self) -> _StagedOutput:
        import pyogrio

        # The staging file is renamed only once complete: no need to sync every chunk.
        self._sync = pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS")
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})
        return self

    def __exit__(self, *exc: object) -> None:
        import pyogrio

        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": self._sync})
        for journal in self.staging.parent.glob(f"{self.staging.name}-*"):
            journal.unlink(missing_ok=True)
        self._lease.close()

    def write(self, frame: gpd.GeoDataFrame) -> None:
        """Append features."""
        import pyogrio

        from glnet_geo.io.writer import writing

        with writing(self.path):
            pyogrio.write_dataframe(frame, self.staging, layer=self.layer, driver="GPKG",
                                    geometry_type=self.geometry_type, append=self._started,
                                    promote_to_multi=self.geometry_type == "MultiPolygon")
        self._started = True
        self.count += len(frame)

    def publish(self, overwrite: bool) -> None:
        """Move the features under the final name (converting when needed)."""
        from glnet_geo.io.writer import writing

        with writing(self.path):
            self._publish(overwrite)

    def _publish(self, overwrite: bool) -> None:
        if self.fmt is VectorFormat.GPKG:
            self._replace(self.staging, self.path, overwrite)
            return
        if self.fmt is VectorFormat.GEOPARQUET:
            self._write_geoparquet(self.converted)
            self._replace(self.converted, self.path, overwrite)
            return
        import pyogrio

        target = self.converted
        if self.fmt is VectorFormat.SHAPEFILE:
            target.mkdir()
            target = target / f"{self.layer}.shp"
        options = {"RFC7946": "YES"} if self.fmt is VectorFormat.GEOJSON else None
        with pyogrio.open_arrow(self.staging, use_pyarrow=True) as (meta, reader):
            pyogrio.write_arrow(reader, target, driver=self.fmt.driver, layer=self.layer,
                                geometry_name=meta["geometry_name"] or "geometry",
                                geometry_type=self.geometry_type, crs=meta["crs"],
                                layer_options=options)
        if self.fmt is VectorFormat.SHAPEFILE:
            if overwrite:
                for part in output_files(self.path, self.fmt):
                    part.unlink(missing_ok=True)
            for part in sorted(target.parent.iterdir()):
                os.replace(part, self.path.with_suffix(part.suffix))
            return
        self._replace(target, self.path, overwrite)

    @staticmethod
    def _replace(source: Path, target: Path, overwrite: bool) -> None:
        from glnet_geo.io.writer import publish_file

        publish_file(source, target, overwrite)  # refuses an output that appeared meanwhile

    def _write_geoparquet(self, target: Path) -> None:
        """Stream the staged features into GeoParquet 1.1 (WKB geometry column)."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        import pyogrio
        import pyproj

        types = [self.geometry_type]
        geo = {"version": "1.1.0", "primary_column": "geometry",
               "columns": {"geometry": {
                   "encoding": "WKB", "geometry_types": types,
                   "crs": pyproj.CRS.from_wkt(self.crs.to_wkt()).to_json_dict()}}}
        with pyogrio.open_arrow(self.staging, use_pyarrow=True) as (meta, reader):
            names = [("geometry" if n == meta["geometry_name"] else n)
                     for n in reader.schema.names]
            fields = [pa.field(n, pa.binary()) if n == "geometry" else reader.schema.field(n)
                      for n in names]
            schema = pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})
            with pq.ParquetWriter(target, schema) as writer:
                for batch in reader:
                    columns = [c.cast(pa.binary()) if n == "geometry" else c
                               for n, c in zip(names, batch.columns, strict=True)]
                    writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------

def vectorize_raster(mask_path: str | os.PathLike, output_path: str | os.PathLike, *,
                     simplify: float = 0.0, min_area: float = 0.0,
                     classes: Iterable[int] | None = None, regularize: bool = False,
                     probabilities: str | os.PathLike | None = None,
                     format: str | VectorFormat | None = None,
                     block_size: int = DEFAULT_BLOCK_SIZE,
                     connectivity: int | Connectivity = Connectivity.FOUR,
                     overwrite: bool = False,
                     class_names: Sequence[str] | dict[int, str] | None = None) -> Path:
    """Write one polygon per connected region of a class raster.

    Args:
        mask_path: a single-band integer class raster with a CRS (any size).
        output_path: the polygons; the format follows the extension (.gpkg,
            .geojson/.json, .shp, .fgb, .parquet) unless ``format`` is given.
        simplify: coverage simplification tolerance in map units (0: none);
            neighbouring regions keep sharing their edges.
        min_area: drop regions smaller than this, in m2, and fill holes
            smaller than it (0: keep all).
        classes: class ids to write (None: all).
        regularize: right-angled outlines (buildings); see
            :mod:`glnet_geo.regularize`.
        probabilities: a raster of the same size with one band per class (band
            ``k + 1`` for class ``k``, uint8 scaled 0..255 or float 0..1) or one
            confidence band; adds ``confidence``, the mean over the region.
        format: "gpkg", "geojson", "shapefile", "flatgeobuf" or "geoparquet".
        block_size: side of the square blocks processed at a time, in pixels.
        connectivity: 4 (default) or 8.
        overwrite: replace an existing output.
        class_names: names by class id; overrides the raster's ``class_names``
            tag; unnamed classes are called ``class_<id>``.

    Returns:
        The output path.

    Raises:
        InputError: bad raster, option or format.
        OutputExistsError: the output exists and ``overwrite`` is False.
        OutputError: the output's directory is missing or not writable.

    """
    import rasterio

    from glnet_geo.io.reader import block_cache

    mask_path, output_path = Path(mask_path), Path(output_path)
    fmt = resolve_format(output_path, format)
    check_output(output_path, fmt, overwrite)
    connectivity = _connectivity(connectivity)
    if not (isinstance(block_size, int) and block_size >= 2):
        raise InputError(f"block size {block_size!r} is not an integer >= 2 pixels; "
                         f"use e.g. {DEFAULT_BLOCK_SIZE}")
    for name, value in (("simplify", simplify), ("min-area", min_area)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise InputError(f"--{name} {value!r} is not a number >= 0; pass e.g. 0 or 1.5")
    keep = None if classes is None else _class_ids(classes)
    if not mask_path.exists():
        raise InputError(f"class raster {mask_path} does not exist; check the path")

    with block_cache(_cache_mb(block_size)):
        try:
            src = rasterio.open(mask_path)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"{mask_path} is not a raster GDAL can open ({exc}); "
                             f"give a class GeoTIFF") from None
        with src:
            check_class_raster(src)
            names = read_class_names(src)
            if class_names is not None:
                names.update(class_names.items() if isinstance(class_names, dict)
                             else enumerate(class_names))
            prob = _open_probabilities(probabilities, src) if probabilities else None
            try:
                finish = _Finisher(
                    transform=src.transform, crs=src.crs,
                    areas=PixelAreas(src.crs, src.transform, (src.width / 2, src.height / 2)),
                    class_names=names, min_area=float(min_area), regularize=regularize,
                    connectivity=connectivity, with_confidence=prob is not None)
                tolerance_px = float(simplify) / math.sqrt(abs(src.transform.determinant))
                with _StagedOutput(output_path, fmt, finish.geometry_type, finish.columns(),
                                   src.crs) as out:
                    for regions in _iter_regions(src, block_size=block_size,
                                                connectivity=connectivity, classes=keep,
                                                tolerance_px=tolerance_px, probabilities=prob):
                        out.write(finish(regions))
                    if not out.count:
                        out.write(finish(_Regions()))  # an empty layer, with its fields
                    styles = _class_styles(src, names, keep)
                    if styles and fmt is VectorFormat.GPKG:
                        from glnet_geo.styles import add_layer_style, polygon_qml

                        add_layer_style(out.staging, out.layer, polygon_qml(styles))
                    out.publish(overwrite)
            finally:
                if prob is not None:
                    prob.close()
    if styles and fmt is not VectorFormat.GPKG:
        _write_polygon_qml(output_path, styles)
    if out.count:
        log.info("wrote %d polygons to %s", out.count, output_path)
    else:
        log.warning("wrote no feature to %s: %s has no %s pixel; check --classes and the "
                    "raster's values", output_path, mask_path.name,
                    "valid" if keep is None else f"class {','.join(map(str, keep))}")
    return output_path


def _class_styles(src: rasterio.io.DatasetReader, names: dict[int, str],
                  keep: Sequence[int] | None) -> list[ClassStyle]:
    """Return the named classes (those kept) with the raster's palette colours.

    Classes missing from the palette (or a raster without one) take colours
    of matplotlib's ``tab20``.
    """
    from matplotlib import colormaps

    from glnet_geo.styles import ClassStyle

    try:
        table = src.colormap(1)
    except ValueError:  # no colour table
        table = {}
    fallback = colormaps["tab20"]
    styles = []
    for value in sorted(names):
        if keep is not None and value not in keep:
            continue
        color = table.get(value)
        if color is None or (len(color) > 3 and color[3] == 0):
            color = tuple(int(round(255 * c)) for c in fallback(value % 20)[:3])
        styles.append(ClassStyle(value, names[value], tuple(int(c) for c in color[:3])))
    return styles


def _write_polygon_qml(output_path: Path, styles: Sequence[ClassStyle]) -> None:
    """Write the polygons' QGIS style beside them, unless a raster's style is there."""
    from glnet_geo.styles import polygon_qml, qml_path, write_text

    path = qml_path(output_path)
    if path.exists() and "<rasterrenderer" in path.read_text(encoding="utf-8",
                                                             errors="replace"):
        log.warning("%s styles the class raster of the same base name; the polygons' style "
                    "is not written (name the polygons differently to get one)", path)
        return
    write_text(path, polygon_qml(styles))


def _connectivity(value: int | Connectivity) -> Connectivity:
    try:
        return Connectivity(int(value))
    except (ValueError, TypeError):
        raise InputError(f"connectivity {value!r} is not 4 or 8; pass 4 (edge neighbours) "
                         f"or 8 (edge and corner neighbours)") from None


def _class_ids(classes: Iterable[int]) -> list[int]:
    out = []
    for c in classes:
        try:
            out.append(int(c))
        except (ValueError, TypeError):
            raise InputError(f"class {c!r} is not an integer class id; pass ids such as "
                             f"--classes 1,2") from None
    if not out:
        raise InputError("no class ids given to keep; pass ids such as --classes 1,2 or none "
                         "to keep all")
    return out


def _open_probabilities(path: str | os.PathLike,
                        src: rasterio.io.DatasetReader) -> rasterio.io.DatasetReader:
    import rasterio

    try:
        prob = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"probabilities {path} cannot be opened ({exc}); check the path"
                         ) from None
    if (prob.width, prob.height) != (src.width, src.height):
        prob.close()
        raise InputError(f"probabilities {path} are {prob.width}x{prob.height} px but the class "
                         f"raster is {src.width}x{src.height}; give the raster written with it")
    return prob


def _cache_mb(block_size: int) -> int:
    """GDAL block cache in MB: four blocks of 8-byte pixels, 64 to 512 MB.

    Blocks are read once each, so a larger cache (GDAL's default is 5% of the
    RAM) would only make the resident memory grow with the raster.
    """
    return int(min(512, max(64, 4 * block_size * block_size * 8 / 2**20)))
