"""A user's own imagery: GeoTIFF tiles with label rasters or a vector file of polygons.

Built on torchgeo: the images are a :class:`~torchgeo.datasets.RasterDataset`,
the labels a ``RasterDataset`` (class-id rasters) or a
:class:`~torchgeo.datasets.VectorDataset` (polygons whose ``label_field``
holds a class id or a class name), joined with ``&`` into an
:class:`~torchgeo.datasets.IntersectionDataset`. Labels are read on the
imagery's grid: label rasters are warped (nearest) and polygons rasterized
onto it, reprojected when their CRS differs from the imagery's.

Scenes are square windows of ``scene_size`` pixels on that grid: drawn at
random by torchgeo's :class:`~torchgeo.samplers.RandomGeoSampler` for
training, and laid edge to edge over every tile by
:class:`~torchgeo.samplers.GridGeoSampler` for validation and evaluation,
where only the pixels of the tile a scene belongs to are scored, so every
labelled pixel counts once.

Classes come from, in this order:

1. a class file (``--classes``), JSON::

       {"classes": [{"name": "urban", "color": [160, 160, 160]}, ...],
        "ignore_index": null}

   class ids are positions in the list; polygons may carry ids or names;
2. the vector attribute: names (sorted, after a first ``background`` class)
   or integer ids;
3. the label rasters' values (``class_<i>``), colours from their colour table.

Pixels outside every polygon get class 0; pixels outside the imagery, on the
label rasters' nodata, or on the imagery's nodata are not scored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import from_bounds
from torch.utils.data import Dataset
from torchgeo.datasets import IntersectionDataset, RasterDataset, VectorDataset
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

from glnet_geo.classes import DEFAULT_COLORS, NO_CLASS
from glnet_geo.datasets.sample import SceneSample, SceneViews
from glnet_geo.errors import InputError
from glnet_geo.io.reader import Normalization, expand_inputs, reading

log = logging.getLogger(__name__)

#: Suffixes read as vector label files.
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet")

#: Name of class 0 when classes are the names found in a vector attribute.
BACKGROUND = "background"


@dataclass
class ClassTable:
    """The classes of a custom dataset.

    Attributes:
        names: Class names, index = class id.
        colors: RGB colour per class.
        ignore_index: Class left out of the loss and metrics, if any.
        source: Where the classes come from, for error messages.

    """

    names: list[str]
    colors: list[tuple[int, int, int]] = field(default_factory=list)
    ignore_index: int | None = None
    source: str = "the classes"

    def __post_init__(self) -> None:
        if not self.colors:
            self.colors = [DEFAULT_COLORS[i % len(DEFAULT_COLORS)] for i in range(len(self.names))]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.names)


def read_class_file(path: str | os.PathLike) -> ClassTable:
    """Read a class file (JSON, see the module docstring).

    Raises:
        InputError: Missing file, bad JSON or entries without a name.

    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"class file {path} does not exist; give a JSON file "
                         '{"classes": [{"name": ..., "color": [r, g, b]}, ...]}') from None
    except json.JSONDecodeError as exc:
        raise InputError(f"class file {path} is not valid JSON ({exc.msg}, line {exc.lineno}); "
                         "fix its syntax") from None
    entries = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
        raise InputError(f"class file {path} has no list of classes with names; expected "
                         '{"classes": [{"name": "urban", "color": [r, g, b]}, ...]}')
    names = [e["name"] for e in entries]
    colors = [tuple(int(v) for v in e["color"]) if "color" in e else
              DEFAULT_COLORS[i % len(DEFAULT_COLORS)] for i, e in enumerate(entries)]
    ignore = data.get("ignore_index") if isinstance(data, dict) else None
    if ignore is not None and not 0 <= int(ignore) < len(names):
        raise InputError(f"class file {path}: ignore_index {ignore} is not a class id "
                         f"(0..{len(names) - 1})")
    return ClassTable(names, colors, None if ignore is None else int(ignore),
                      source=f"the classes of {path}")


def expand_paths(patterns: Sequence[str | os.PathLike], what: str) -> list[str]:
    """Files named by paths, folders and glob patterns, sorted and each once.

    Expanded as ``predict``'s inputs are (:func:`glnet_geo.io.reader.expand_inputs`).

    Raises:
        InputError: A pattern that matches nothing, or a path that is no file.

    """
    files = expand_inputs(patterns, what)
    for path in files:
        if not path.startswith("/vsi") and not Path(path).is_file():
            raise InputError(f"{what} {path} matches no file; give raster paths, a folder of "
                             "rasters or a quoted glob such as 'tiles/*.tif'")
    return sorted(dict.fromkeys(files))


def is_vector(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a vector label file (by suffix)."""
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


class ImageRasters(RasterDataset):
    """The imagery tiles (every band, as float32)."""

    filename_glob = "*"


class LabelRasters(RasterDataset):
    """Class-id rasters (band 1), warped onto the imagery's grid with nearest resampling."""

    filename_glob = "*"
    is_image = False


class LabelPolygons(VectorDataset):
    """Polygons whose ``label_field`` holds a class id or name, rasterized onto the imagery grid.

    Args:
        path: The vector file.
        crs: CRS of the imagery.
        res: Resolution of the imagery.
        label_field: Attribute holding the class.
        class_ids: Class id of each attribute value.
        layer: Layer of a multi-layer file (default: the first).

    """

    def __init__(self, path: str, crs: Any, res: tuple[float, float], label_field: str,
                 class_ids: dict[Any, int], layer: str | None = None) -> None:
        self.class_ids = class_ids
        super().__init__(paths=[path], crs=crs, res=res, label_name=label_field, layer=layer)

    def get_label(self, feature: pd.Series) -> int:
        """Class id of one polygon."""
        return self.class_ids[_plain(feature[self.label_name])]


def _plain(value: Any) -> Any:
    """Turn a numpy scalar into a Python value (so that 3 and np.int64(3) match)."""
    return value.item() if isinstance(value, np.generic) else value


def warn_invalid_polygons(path: str, geometries: Any) -> int:
    """Warn in one line when label polygons are invalid (self-intersecting, bad rings).

    GDAL rasterizes them as its scanline fill goes, which can leave holes or
    fill the wrong side of a bow-tie, so the labels may not say what they
    were meant to; repairing is the user's call (``ogr2ogr -makevalid``).

    Returns:
        The number of invalid polygons.

    """
    valid = shapely.is_valid(np.asarray(geometries))
    invalid = np.flatnonzero(~valid & ~shapely.is_missing(np.asarray(geometries)))
    if len(invalid):
        reason = shapely.is_valid_reason(np.asarray(geometries)[invalid[0]])
        log.warning("labels %s: %d of %d polygons are invalid (feature %d: %s); they are "
                    "rasterized as they are, which may leave holes or fill the wrong areas: "
                    "repair them first (ogr2ogr -makevalid fixed.gpkg %s)", path, len(invalid),
                    len(valid), invalid[0], reason, path)
    return len(invalid)


def vector_classes(path: str, label_field: str, classes: ClassTable | None,
                   layer: str | None = None) -> tuple[ClassTable, dict[Any, int]]:
    """Find the classes of a vector label file and the class id of each attribute value.

    Raises:
        InputError: Unreadable file, missing attribute, names not in the class
            file, or ids beyond it.

    """
    import pyogrio

    try:
        info = pyogrio.read_info(path, layer=layer)
        values = pyogrio.read_dataframe(path, layer=layer, columns=[label_field]) \
            if label_field in info["fields"] else None
    except pyogrio.errors.DataSourceError as exc:
        raise InputError(f"labels {path} cannot be read as a vector file ({exc}); give a "
                         "GeoPackage, GeoJSON or Shapefile") from None
    if values is None:
        raise InputError(f"labels {path} has no attribute {label_field!r} (attributes: "
                         f"{', '.join(info['fields']) or 'none'}); pass the class attribute "
                         "with --label-field")
    warn_invalid_polygons(path, values.geometry)
    series = values[label_field].dropna()
    unique = sorted({_plain(v) for v in series})
    if not unique:
        raise InputError(f"labels {path}: attribute {label_field!r} holds no value; every "
                         "polygon needs its class")
    numeric = all(isinstance(v, int | np.integer) for v in unique)
    if numeric:
        if min(unique) < 0:
            raise InputError(f"labels {path}: attribute {label_field!r} holds class id "
                             f"{min(unique)}; class ids start at 0")
        if classes is None:
            classes = ClassTable([f"class_{i}" for i in range(max(unique) + 1)])
        if max(unique) >= classes.num_classes:
            raise InputError(f"labels {path}: attribute {label_field!r} holds class id "
                             f"{max(unique)} but {classes.source} are {classes.names}; use "
                             "classes that include it or fix the ids")
        return classes, {v: v for v in unique}
    unique = [str(v) for v in unique]
    if classes is None:
        names = [BACKGROUND, *[v for v in unique if v != BACKGROUND]]
        classes = ClassTable(names)
    unknown = [v for v in unique if v not in classes.names]
    if unknown:
        raise InputError(f"labels {path}: attribute {label_field!r} holds class names "
                         f"{unknown[:5]} that are not among {classes.source} "
                         f"({', '.join(classes.names)}); use classes that include them or fix "
                         "the attribute")
    return classes, {v: classes.names.index(v) for v in unique}


def raster_classes(paths: Sequence[str], classes: ClassTable | None) -> ClassTable:
    """Find the classes of label rasters: the class file's, or one per value found.

    Raises:
        InputError: A label value beyond the class file's classes.

    """
    highest = -1
    colormap: dict[int, tuple[int, ...]] = {}
    for path in paths:
        with rasterio.open(path) as src:
            nodata = src.nodata
            for _, window in src.block_windows(1):
                with reading(src, window, "label raster"):
                    block = src.read(1, window=window)
                if nodata is not None:
                    block = block[block != nodata]
                block = block[block != NO_CLASS]
                if block.size:
                    highest = max(highest, int(block.max()))
            if not colormap:
                try:
                    colormap = src.colormap(1)
                except ValueError:
                    pass
        if classes is not None and highest >= classes.num_classes:
            raise InputError(f"label raster {path} holds class {highest} but {classes.source} "
                             f"are {classes.names} (ids 0..{classes.num_classes - 1}); use "
                             "classes that include it or fix the labels")
    if classes is not None:
        return classes
    if highest < 0:
        raise InputError(f"the label rasters ({paths[0]}, ...) hold no class value; check their "
                         "nodata value and content")
    names = [f"class_{i}" for i in range(highest + 1)]
    colors = [tuple(colormap[i][:3]) if i in colormap else DEFAULT_COLORS[i % 10]
              for i in range(highest + 1)]
    return ClassTable(names, colors)


def image_normalization(paths: Sequence[str], sample_side: int = 256) -> Normalization:
    """Per-band mean and standard deviation of the imagery, from decimated reads.

    The statistics come from each tile read at most ``sample_side`` pixels
    wide (GDAL serves it from overviews where they exist); nodata is left out.
    """
    sums, squares, count = None, None, 0
    for path in paths:
        with rasterio.open(path) as src:
            scale = max(1, max(src.height, src.width) // sample_side)
            shape = (src.count, max(1, src.height // scale), max(1, src.width // scale))
            with reading(src, role="image"):
                data = src.read(out_shape=shape, masked=True).astype(np.float64)
        valid = ~np.ma.getmaskarray(data).any(0)
        values = data.filled(0)[:, valid]
        sums = values.sum(1) if sums is None else sums + values.sum(1)
        squares = (values**2).sum(1) if squares is None else squares + (values**2).sum(1)
        count += values.shape[1]
    mean = sums / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0))
    std = np.where(std > 0, std, 1.0)
    return Normalization(scale=1.0, mean=[float(v) for v in mean], std=[float(v) for v in std])


class CustomDataset:
    """Image tiles joined with their labels (rasters or polygons) through torchgeo.

    Args:
        images: Image GeoTIFFs: paths, folders or glob patterns.
        labels: Label rasters (paths, folders, globs) or one vector file.
        label_field: Attribute of the vector file that holds the class.
        classes: A class file (see :func:`read_class_file`), or a table.
        layer: Layer of a multi-layer vector file.

    Raises:
        InputError: No files, missing attribute, unknown classes, or labels
            that do not overlap the imagery.

    """

    def __init__(self, images: Sequence[str | os.PathLike], labels: Sequence[str | os.PathLike],
                 label_field: str | None = None,
                 classes: str | os.PathLike | ClassTable | None = None,
                 layer: str | None = None) -> None:
        if isinstance(classes, str | os.PathLike):
            classes = read_class_file(classes)
        self.image_files = expand_paths(images, "--images")
        self.images = ImageRasters(paths=self.image_files)
        with rasterio.open(self.image_files[0]) as src:
            self.in_channels = src.count
            self.image_nodata = src.nodata
        labels = [os.fspath(p) for p in labels]
        if len(labels) == 1 and is_vector(labels[0]):
            if not label_field:
                raise InputError(f"labels {labels[0]} is a vector file; name its class "
                                 "attribute with --label-field")
            if not Path(labels[0]).exists():
                raise InputError(f"labels {labels[0]} does not exist; check the path")
            self.classes, class_ids = vector_classes(labels[0], label_field, classes, layer)
            self.labels: RasterDataset | VectorDataset = LabelPolygons(
                labels[0], self.images.crs, self.images.res, label_field, class_ids, layer)
            self.label_nodata = None
            self.label_files = labels
        else:
            self.label_files = expand_paths(labels, "--labels")
            self.classes = raster_classes(self.label_files, classes)
            self.labels = LabelRasters(paths=self.label_files, crs=self.images.crs,
                                       res=self.images.res)
            with rasterio.open(self.label_files[0]) as src:
                self.label_nodata = src.nodata
        try:
            self.joined = IntersectionDataset(self.images, self.labels)
        except RuntimeError:
            raise InputError(
                f"the labels ({self.label_files[0]}, ...) do not overlap the images "
                f"({self.image_files[0]}, ...): images cover {_extent(self.images)}, labels "
                f"cover {_extent(self.labels)} in {crs_name(self.images.crs)}; give labels of "
                "the same area") from None

    @property
    def footprint(self) -> shapely.Geometry:
        """Where imagery and labels overlap, in the imagery's CRS."""
        return shapely.union_all(self.joined.index.geometry.values)

    def read(self, query: tuple[slice, ...], keep: shapely.Geometry | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image, labels and validity of one window of the imagery grid.

        Args:
            query: ``(x slice, y slice)`` in the imagery's CRS.
            keep: Score only pixels inside this area (default: the footprint).

        Returns:
            ``(C, H, W)`` float32 image, ``(H, W)`` uint8 labels (``NO_CLASS``
            where unlabelled), ``(H, W)`` boolean image validity.

        Raises:
            InputError: Label values beyond the classes.

        """
        sample = self.joined[query]
        image = sample["image"].numpy()
        label = sample["mask"].numpy().astype(np.int64)
        x, y = query[0], query[1]
        height, width = label.shape
        transform = from_bounds(x.start, y.start, x.stop, y.stop, width, height)
        area = self.footprint if keep is None else shapely.intersection(self.footprint, keep)
        inside = rasterize([(area, 1)], out_shape=(height, width), transform=transform,
                           fill=0, dtype="uint8").astype(bool) if not area.is_empty else \
            np.zeros((height, width), dtype=bool)
        valid = np.ones((height, width), dtype=bool)
        if self.image_nodata is not None:
            valid &= ~(image == self.image_nodata).all(0)
        if self.label_nodata is not None:
            label[label == self.label_nodata] = NO_CLASS
        label[~inside] = NO_CLASS
        bad = (label != NO_CLASS) & ((label < 0) | (label >= self.classes.num_classes))
        if bad.any():
            value = int(label[bad][0])
            raise InputError(f"labels hold class {value} at x={x.start:.2f}..{x.stop:.2f}, "
                             f"y={y.start:.2f}..{y.stop:.2f} but {self.classes.source} are "
                             f"{self.classes.names}; fix the labels or the classes")
        return image, label.astype(np.uint8), valid

    @property
    def tile_shapes(self) -> list[tuple[int, int]]:
        """Width and height in pixels of each tile where imagery and labels overlap."""
        xres, yres = self.joined.res
        return [(round((b[2] - b[0]) / xres), round((b[3] - b[1]) / yres))
                for b in (g.bounds for g in self.joined.index.geometry)]

    def random_sampler(self, scene_size: int, length: int | None = None) -> RandomGeoSampler:
        """Torchgeo's random sampler of training scenes of ``scene_size`` pixels.

        Raises:
            InputError: No tile is as large as a scene.

        """
        sampler = RandomGeoSampler(self.joined, size=scene_size, length=length)
        if not sampler.bounds:
            raise InputError(f"scene size {scene_size} px is larger than every image tile "
                             f"({_largest_tile(self.joined)}); lower --scene-size")
        return sampler

    def grid_scenes(self, scene_size: int) -> list[tuple[tuple[slice, ...], shapely.Geometry]]:
        """Scenes laid edge to edge over each tile by torchgeo's grid sampler.

        Each scene comes with the tile it belongs to; a tile smaller than
        ``scene_size`` is one scene.

        Returns:
            ``(query, tile)`` pairs.

        """
        xres, yres = self.joined.res
        scenes = []
        for tile in self.joined.index.geometry:
            xmin, ymin, xmax, ymax = tile.bounds
            side = min(scene_size, int((xmax - xmin) / xres), int((ymax - ymin) / yres))
            if side < 1:
                continue
            sampler = GridGeoSampler(self.joined, size=side, stride=side,
                                     roi=shapely.box(xmin, ymin, xmax, ymax))
            for query in sampler:
                x, y = query[0], query[1]
                if shapely.box(x.start, y.start, x.stop, y.stop).intersection(tile).area > 0:
                    scenes.append(((x, y), tile))
        return scenes


def crs_name(crs: object) -> str:
    """Name a CRS briefly for a message: its authority code (EPSG:32631), else its name."""
    from pyproj import CRS as ProjCRS

    try:
        parsed = ProjCRS.from_user_input(crs)
    except Exception:  # any CRS pyproj cannot parse is named as it prints
        return str(crs)
    authority = parsed.to_authority()
    return ":".join(authority) if authority else parsed.name


def _extent(dataset: Any) -> str:
    xmin, ymin, xmax, ymax = dataset.index.total_bounds
    return f"x {xmin:.1f}..{xmax:.1f}, y {ymin:.1f}..{ymax:.1f}"


def _largest_tile(dataset: Any) -> str:
    xres, yres = dataset.res
    sides = [(round((b[2] - b[0]) / xres), round((b[3] - b[1]) / yres))
             for b in (g.bounds for g in dataset.index.geometry)]
    width, height = max(sides, key=lambda s: min(s))
    return f"largest {width} x {height} px"


class CustomScenes(Dataset):
    """Scenes of a :class:`CustomDataset` as a map-style dataset.

    ``queries`` are either torchgeo sampler queries (training: every pixel
    scored) or ``(query, tile)`` pairs from :meth:`CustomDataset.grid_scenes`
    (validation: only the tile's pixels scored).

    Args:
        dataset: The joined imagery and labels.
        queries: The scenes to read.
        views: Turns each scene into a :class:`SceneSample`.

    """

    def __init__(self, dataset: CustomDataset, queries: Sequence[Any],
                 views: SceneViews | None = None) -> None:
        self.dataset = dataset
        self.queries = list(queries)
        self.views = views

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, index: int) -> SceneSample | tuple[np.ndarray, np.ndarray]:
        return self.scene(self.queries[index])

    def scene(self, item: Any) -> SceneSample | tuple[np.ndarray, np.ndarray]:
        """Read one scene (a query, or a ``(query, tile)`` pair)."""
        if len(item) == 2 and isinstance(item[1], shapely.Geometry):
            query, tile = item
        else:
            query, tile = item, None
        image, label, valid = self.dataset.read(query, keep=tile)
        if self.views is None:
            return image, np.where(valid, label, NO_CLASS).astype(np.uint8)
        x, y = query[0], query[1]
        return self.views(image, label, valid, name=f"x={x.start:.1f} y={y.start:.1f}")


class RandomScenes(Dataset):
    """Training scenes of a :class:`CustomDataset` indexed by torchgeo sampler queries.

    Used with ``DataLoader(RandomScenes(...), sampler=dataset.random_sampler(...))``:
    the sampler yields queries, this dataset reads them.
    """

    def __init__(self, dataset: CustomDataset, views: SceneViews) -> None:
        self.reader = CustomScenes(dataset, [], views)

    def __getitem__(self, query: tuple[slice, ...]) -> SceneSample:
        return self.reader.scene(query)
