"""Seeded synthetic scenes where context and detail are both needed.

GLNet's claim is that a global view of a downsampled scene and full-resolution
local patches each see something the other cannot. The scenes made here are
built so that claim can be measured:

* **Context classes.** The scene is cut into a few large *zones*, each either
  ``urban`` or ``rural`` (two distinct textures). Inside the zones lie large
  blobs of one look-alike texture; a blob is ``park`` in an urban zone and
  ``meadow`` in a rural one. A blob is larger than a local patch, so a patch
  inside it sees only the shared texture: only a view of the whole scene tells
  which class it is.
* **Detail classes.** Thin ``road`` lines (a few pixels wide) and small
  ``building`` roofs (about ten pixels) all but vanish when the scene is
  downsampled to the global view: only full-resolution patches resolve them.

:func:`generate_sparse_scene` makes scenes of the other kind GLNet meets:
a binary ``background`` / ``building`` task where the target is sparse, as
for the paper's coarse-to-fine variant. Buildings cover a few percent of the
area, packed in a few compact villages and some isolated farms, and most of
the scene is fields, meadows, forest and roads (all ``background``).

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed and
size give the same arrays on every machine. Geometries are made with shapely
in pixel coordinates and rasterized with :func:`rasterio.features.rasterize`,
so the label raster and the polygons written by :func:`write_scene` agree.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely
from affine import Affine
from PIL import Image
from rasterio.features import rasterize
from shapely.affinity import affine_transform

if TYPE_CHECKING:
    import geopandas as gpd

#: Class names of the synthetic scenes, in class-id order.
CLASS_NAMES: tuple[str, ...] = ("urban", "rural", "park", "meadow", "road", "building")
#: Display colours (RGB) of the classes, in class-id order.
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (160, 160, 160), (225, 210, 120), (40, 170, 60), (150, 230, 90), (40, 40, 40),
    (220, 40, 40),
)
URBAN, RURAL, PARK, MEADOW, ROAD, BUILDING = range(6)

#: Field of the written vector labels that holds the class name.
LABEL_FIELD = "class"


@dataclass(frozen=True)
class Texture:
    """How one kind of ground looks: a base colour plus two kinds of noise.

    Attributes:
        color: Mean RGB value.
        grain: Standard deviation of independent per-pixel noise.
        blotch: Amplitude of a smooth noise field shared by the three bands.
        blotch_cell: Size in pixels of that field's features.

    """

    color: tuple[int, int, int]
    grain: float
    blotch: float = 0.0
    blotch_cell: int = 16


#: The look of each class. ``park`` and ``meadow`` share one texture on purpose.
TEXTURES: dict[int, Texture] = {
    URBAN: Texture((150, 146, 140), grain=14, blotch=10, blotch_cell=16),
    RURAL: Texture((150, 160, 95), grain=10, blotch=14, blotch_cell=24),
    PARK: Texture((70, 125, 60), grain=10, blotch=25, blotch_cell=8),
    MEADOW: Texture((70, 125, 60), grain=10, blotch=25, blotch_cell=8),
    ROAD: Texture((55, 55, 60), grain=6),
    BUILDING: Texture((190, 95, 75), grain=8),
}


@dataclass(frozen=True)
class SceneParams:
    """Sizes (in pixels) and densities of the scene's features.

    The defaults suit a global view a quarter of the scene's side (512 px
    scenes, 128 px global view, 128 px patches): blobs are larger than a
    patch, roads and buildings smaller than one global-view logit cell.

    Attributes:
        zone_side: Typical side of a zone; a scene has about
            ``area / zone_side**2`` zones (at least two, one of each kind).
        blob_radius: Range of the look-alike blobs' semi-axes.
        blobs_per_zone: Range of the number of blobs per zone (upper bound
            excluded), scaled by the zone's area relative to ``zone_side**2``.
        road_width: Range of road widths.
        road_spacing: About one road per this many pixels of scene side.
        building_side: Range of building sides.
        building_spacing: Mean distance between buildings in urban zones
            (rural zones hold a tenth as many).

    """

    zone_side: int = 300
    blob_radius: tuple[int, int] = (60, 110)
    blobs_per_zone: tuple[int, int] = (1, 3)
    road_width: tuple[int, int] = (4, 7)
    road_spacing: int = 220
    building_side: tuple[int, int] = (7, 13)
    building_spacing: int = 34


@dataclass
class SyntheticScene:
    """One generated scene.

    Attributes:
        image: ``(3, H, W)`` uint8 RGB image.
        label: ``(H, W)`` uint8 class ids (see :data:`CLASS_NAMES`).
        features: Non-overlapping polygons in pixel coordinates (x right,
            y down), one row per feature, with ``class_id`` and ``class``
            (name) columns; rasterizing them gives ``label``.
        class_names: Name of each class id (:data:`CLASS_NAMES` or
            :data:`SPARSE_CLASS_NAMES`).
        class_colors: Display colour of each class id.

    """

    image: np.ndarray
    label: np.ndarray
    features: object = field(repr=False)  # geopandas.GeoDataFrame
    class_names: tuple[str, ...] = CLASS_NAMES
    class_colors: tuple[tuple[int, int, int], ...] = CLASS_COLORS


def generate_scene(size: int | tuple[int, int] = 512, seed: int = 0,
                   params: SceneParams | None = None) -> SyntheticScene:
    """Make one seeded synthetic scene.

    Args:
        size: Side in pixels, or ``(height, width)``.
        seed: Seed of the random generator; the same seed gives the same scene.
        params: Feature sizes and densities (defaults: :class:`SceneParams`).

    Returns:
        The scene's image, label and polygons.

    """
    import geopandas as gpd

    params = params or SceneParams()
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    frame = shapely.box(0, 0, width, height)

    zones, zone_kinds = _zones(rng, frame, params)
    blobs = _blobs(rng, zones, zone_kinds, params)
    roads = _roads(rng, frame, height, width, params)
    buildings = _buildings(rng, zones, zone_kinds, blobs, params)

    # Burn order: zones, blobs, buildings, roads; make the layers planar so that
    # every pixel centre falls in exactly one polygon.
    layers: list[tuple[int, shapely.Geometry]] = []
    later = shapely.union_all([g for _, g in roads]) if roads else shapely.Polygon()
    for order in (roads, buildings, blobs, zones):
        pieces = []
        for class_id, geom in order:
            piece = shapely.intersection(geom, frame)
            if order is not roads:
                piece = shapely.difference(piece, later)
            if not piece.is_empty:
                pieces.append((class_id, piece))
        layers = pieces + layers
        if order is not roads and order is not zones:
            later = shapely.union(later, shapely.union_all([g for _, g in order]))
    layers = [(c, g) for c, g in layers if g.area > 0]

    label = rasterize(((g, c) for c, g in layers), out_shape=(height, width),
                      transform=Affine.identity(), fill=URBAN, dtype="uint8")
    image = _render(rng, label)
    features = gpd.GeoDataFrame(
        {"class_id": [c for c, _ in layers], LABEL_FIELD: [CLASS_NAMES[c] for c, _ in layers]},
        geometry=[g for _, g in layers], crs=None)
    return SyntheticScene(image=image, label=label, features=features)


def _random_points(rng: np.random.Generator, region: shapely.Geometry, n: int) -> np.ndarray:
    """``n`` uniform random points inside ``region`` (rejection sampling)."""
    if n == 0 or region.is_empty:
        return np.empty((0, 2))
    xmin, ymin, xmax, ymax = region.bounds
    points: list[np.ndarray] = []
    found = 0
    for _ in range(100):
        batch = rng.uniform((xmin, ymin), (xmax, ymax), size=(4 * n + 16, 2))
        inside = batch[shapely.contains_xy(region, batch[:, 0], batch[:, 1])]
        points.append(inside)
        found += len(inside)
        if found >= n:
            break
    return np.concatenate(points)[:n]


def _zones(rng: np.random.Generator, frame: shapely.Polygon,
           params: SceneParams) -> tuple[list[tuple[int, shapely.Geometry]], list[int]]:
    """Voronoi zones covering the frame, each urban or rural (both kinds present)."""
    count = max(2, round(frame.area / params.zone_side**2))
    seeds = _random_points(rng, frame, count)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=frame)
    polygons = [shapely.intersection(c, frame) for c in shapely.get_parts(cells)]
    kinds = [URBAN, RURAL] + [int(k) for k in rng.choice([URBAN, RURAL], size=count - 2)]
    kinds = [int(k) for k in rng.permutation(kinds)]
    return list(zip(kinds, polygons, strict=True)), kinds


def _blobs(rng: np.random.Generator, zones: list[tuple[int, shapely.Geometry]],
           kinds: list[int], params: SceneParams) -> list[tuple[int, shapely.Geometry]]:
    """Irregular look-alike blobs, clipped to their zone: park in urban, meadow in rural."""
    blobs = []
    for (_, zone), kind in zip(zones, kinds, strict=True):
        scale = zone.area / params.zone_side**2
        count = round(rng.integers(*params.blobs_per_zone) * min(1.0, scale) + 0.49)
        core = zone.buffer(-params.blob_radius[0] / 2)
        for x, y in _random_points(rng, core if not core.is_empty else zone, count):
            a, b = rng.uniform(*params.blob_radius, size=2)
            outline, _ = _wobbly_ellipse(rng, x, y, a, b)
            blob = shapely.intersection(outline, zone)
            blobs.append((PARK if kind == URBAN else MEADOW, blob))
    return blobs


def _wobbly_ellipse(rng: np.random.Generator, x: float, y: float, a: float,
                    b: float) -> tuple[shapely.Polygon, float]:
    """Make an irregular ellipse of semi-axes about ``a`` and ``b`` on ``(x, y)``, turned at random.

    Returns:
        The polygon and its angle (radians) from the x axis.

    """
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + 0.12 * np.sin(3 * angles + rng.uniform(0, 2 * np.pi)) \
        + 0.06 * np.sin(5 * angles + rng.uniform(0, 2 * np.pi))
    turn = rng.uniform(0, np.pi)
    px, py = a * wobble * np.cos(angles), b * wobble * np.sin(angles)
    ring = np.column_stack([x + px * np.cos(turn) - py * np.sin(turn),
                            y + px * np.sin(turn) + py * np.cos(turn)])
    return shapely.Polygon(ring), turn


def _roads(rng: np.random.Generator, frame: shapely.Polygon, height: int, width: int,
           params: SceneParams | SparseSceneParams) -> list[tuple[int, shapely.Geometry]]:
    """Thin roads crossing the scene from one edge to another, with one bend."""
    count = max(1, round((height + width) / 2 / params.road_spacing))
    roads = []
    for _ in range(count):
        if rng.random() < 0.5:  # west -> east
            start = (0.0, rng.uniform(0, height))
            end = (float(width), rng.uniform(0, height))
        else:  # north -> south
            start = (rng.uniform(0, width), 0.0)
            end = (rng.uniform(0, width), float(height))
        bend = (rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height)
        line = shapely.LineString([start, bend, end])
        roads.append((ROAD, line.buffer(rng.uniform(*params.road_width) / 2, cap_style="flat",
                                        join_style="mitre")))
    return roads


def _buildings(rng: np.random.Generator, zones: list[tuple[int, shapely.Geometry]],
               kinds: list[int], blobs: list[tuple[int, shapely.Geometry]],
               params: SceneParams) -> list[tuple[int, shapely.Geometry]]:
    """Small rotated rectangular roofs, dense in urban zones, sparse in rural ones."""
    taken = shapely.union_all([g for _, g in blobs]).buffer(3) if blobs else shapely.Polygon()
    buildings = []
    for (_, zone), kind in zip(zones, kinds, strict=True):
        free = shapely.difference(zone.buffer(-params.building_side[1]), taken)
        density = 1 / params.building_spacing**2 * (1.0 if kind == URBAN else 0.1)
        count = rng.poisson(free.area * density) if not free.is_empty else 0
        for x, y in _random_points(rng, free, count):
            w, h = rng.uniform(*params.building_side, size=2)
            roof = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
            c, s = np.cos(t := rng.uniform(0, np.pi / 2)), np.sin(t)
            buildings.append((BUILDING, affine_transform(roof, [c, -s, s, c, x, y])))
    return buildings


#: Class names of the sparse building scenes (:func:`generate_sparse_scene`), in id order.
SPARSE_CLASS_NAMES: tuple[str, ...] = ("background", "building")
#: Display colours (RGB) of the sparse scenes' classes, in class-id order.
SPARSE_CLASS_COLORS: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (220, 40, 40))
SPARSE_BACKGROUND, SPARSE_BUILDING = range(2)


class Ground(IntEnum):
    """The kinds of ground a sparse scene is painted with (only ``ROOF`` is a building)."""

    CROP = 0
    MEADOW = 1
    FOREST = 2
    SOIL = 3
    YARD = 4
    ROAD = 5
    ROOF = 6


#: The look of each kind of ground. Ploughed soil is a reddish brown not far from the
#: roofs' colour, so that colour alone does not find the buildings.
GROUND_TEXTURES: dict[int, Texture] = {
    Ground.CROP: TEXTURES[RURAL],
    Ground.MEADOW: TEXTURES[MEADOW],
    Ground.FOREST: Texture((45, 85, 50), grain=12, blotch=30, blotch_cell=6),
    Ground.SOIL: Texture((160, 115, 90), grain=10, blotch=20, blotch_cell=12),
    Ground.YARD: TEXTURES[URBAN],
    Ground.ROAD: TEXTURES[ROAD],
    Ground.ROOF: TEXTURES[BUILDING],
}
#: Share of the field parcels of each kind.
PARCEL_SHARES: dict[Ground, float] = {Ground.CROP: 0.35, Ground.MEADOW: 0.3,
                                      Ground.FOREST: 0.15, Ground.SOIL: 0.2}


@dataclass(frozen=True)
class SparseSceneParams:
    """Sizes (in pixels) and densities of a sparse building scene.

    The defaults suit 128 px scenes seen globally at 64 px through 32 px
    patches (``benchmarks/ablation.py``'s scale): roofs of 6 to 9 px packed
    in villages 100 to 180 px across, in groups of about two, so that on a
    1024 px raster the buildings cover about 7 % of the area and most 128 px
    tiles (about four in five 32 px patches) hold none.
    Villages and farms are Poisson counts per unit area (village centres
    also just outside the scene), so a small scene has the statistics of a
    tile of a large one: most 128 px training scenes hold no building.

    Attributes:
        field_side: Typical side of a field parcel (Voronoi cells).
        village_spacing: One village per ``village_spacing**2`` pixels on
            average (village centres may lie just outside the scene).
        villages_per_cluster: Mean number of villages of a settlement group.
        cluster_spread: Standard deviation of the villages' offsets from
            their group's centre.
        village_radius: Range of a village's long semi-axis (its outline
            wobbles by up to 18 %); the short one is 70 to 100 % of it.
        building_side: Range of roof sides.
        building_spacing: Pitch of the grid the roofs of a village sit on.
        occupancy: Share of a village's grid cells that hold a roof.
        farm_spacing: One isolated farm (one to three roofs) per
            ``farm_spacing**2`` pixels on average.
        road_width: Range of road widths (roads are background).
        road_spacing: About one road per this many pixels of scene side.

    """

    field_side: int = 90
    village_spacing: int = 270
    villages_per_cluster: float = 2.0
    cluster_spread: int = 60
    village_radius: tuple[int, int] = (50, 90)
    building_side: tuple[int, int] = (6, 9)
    building_spacing: int = 10
    occupancy: float = 0.9
    farm_spacing: int = 900
    road_width: tuple[int, int] = (3, 5)
    road_spacing: int = 300


def generate_sparse_scene(size: int | tuple[int, int] = 1024, seed: int = 0,
                          params: SparseSceneParams | None = None) -> SyntheticScene:
    """Make one seeded sparse building scene (classes :data:`SPARSE_CLASS_NAMES`).

    Field parcels of crops, meadow, forest and ploughed soil, a few roads,
    then compact villages (a yard and a dense, aligned grid of roofs) and
    rare isolated farms; roofs that would touch a road are left out.

    Args:
        size: Side in pixels, or ``(height, width)``.
        seed: Seed of the random generator; the same seed gives the same scene.
        params: Feature sizes and densities (defaults: :class:`SparseSceneParams`).

    Returns:
        The scene's image, binary label (1 = building) and polygons: one
        ``background`` polygon (the scene minus the roofs) and one polygon per
        connected roof.

    """
    import geopandas as gpd

    params = params or SparseSceneParams()
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    frame = shapely.box(0, 0, width, height)

    ground = _parcels(rng, frame, params)
    roads = [g for _, g in _roads(rng, frame, height, width, params)]
    village_yards, village_roofs = _villages(rng, frame, params)
    farm_yards, farm_roofs = _farms(rng, frame, params)
    ground += [(Ground.YARD, g) for g in village_yards + farm_yards]
    ground += [(Ground.ROAD, g) for g in roads]

    roofs = np.concatenate([village_roofs, farm_roofs])
    near_road = shapely.union_all(roads).buffer(1.0)
    shapely.prepare(near_road)
    roofs = roofs[~shapely.intersects(near_road, roofs)]
    merged = shapely.get_parts(shapely.intersection(shapely.union_all(roofs), frame))
    roofs = merged[(shapely.get_type_id(merged) == 3) & (shapely.area(merged) > 0)]
    background = shapely.difference(frame, shapely.union_all(roofs))
    class_ids = [SPARSE_BACKGROUND] + [SPARSE_BUILDING] * len(roofs)
    features = gpd.GeoDataFrame(
        {"class_id": class_ids, LABEL_FIELD: [SPARSE_CLASS_NAMES[c] for c in class_ids]},
        geometry=[background, *roofs], crs=None)

    label = rasterize(zip(features.geometry, class_ids, strict=True), out_shape=(height, width),
                      transform=Affine.identity(), fill=SPARSE_BACKGROUND, dtype="uint8")
    looks = rasterize(((g, int(kind)) for kind, g in ground), out_shape=(height, width),
                      transform=Affine.identity(), fill=int(Ground.CROP), dtype="uint8")
    looks[label == SPARSE_BUILDING] = Ground.ROOF
    image = _render(rng, looks, GROUND_TEXTURES)
    return SyntheticScene(image=image, label=label, features=features,
                          class_names=SPARSE_CLASS_NAMES, class_colors=SPARSE_CLASS_COLORS)


def _parcels(rng: np.random.Generator, frame: shapely.Polygon,
             params: SparseSceneParams) -> list[tuple[Ground, shapely.Geometry]]:
    """Voronoi field parcels covering the frame, each of one kind of ground."""
    count = max(2, round(frame.area / params.field_side**2))
    seeds = _random_points(rng, frame, count)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=frame)
    polygons = [shapely.intersection(c, frame) for c in shapely.get_parts(cells)]
    kinds = list(PARCEL_SHARES)
    picks = rng.choice(len(kinds), size=len(polygons), p=list(PARCEL_SHARES.values()))
    return [(kinds[k], p) for k, p in zip(picks, polygons, strict=True)]


def _roofs(rng: np.random.Generator, centres: np.ndarray, angles: np.ndarray,
           side: tuple[int, int]) -> np.ndarray:
    """Make rectangular roofs (sides drawn from ``side``) on ``centres``, turned by ``angles``."""
    half = rng.uniform(*side, size=(len(centres), 2)) / 2
    corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=np.float64)
    u, v = corners[None, :, 0] * half[:, :1], corners[None, :, 1] * half[:, 1:]
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    x = centres[:, :1] + u * cos - v * sin
    y = centres[:, 1:] + u * sin + v * cos
    return shapely.polygons(np.stack([x, y], axis=-1))


def _villages(rng: np.random.Generator, frame: shapely.Polygon,
              params: SparseSceneParams) -> tuple[list[shapely.Geometry], np.ndarray]:
    """Compact villages: an irregular yard holding a dense, aligned grid of roofs each.

    Villages come in small groups (a Thomas cluster process), which leaves
    more of the land without any building than villages scattered
    independently would for the same building fraction. Where villages
    meet, the later one leaves out the roofs that would touch the earlier
    one's yard, so that two roof grids never cross.

    Returns:
        The yards and all the roofs (a shapely array).

    """
    # settlements: Poisson centres (also outside the frame, as far as their villages
    # reach), each with a Poisson number of villages scattered around it
    margin = 1.2 * params.village_radius[1] + 2 * params.cluster_spread
    xmin, ymin, xmax, ymax = frame.bounds
    area = (xmax - xmin + 2 * margin) * (ymax - ymin + 2 * margin)
    mean_villages = params.villages_per_cluster
    count = rng.poisson(area / params.village_spacing**2 / mean_villages)
    settlements = rng.uniform((xmin - margin, ymin - margin), (xmax + margin, ymax + margin),
                              size=(count, 2))
    villages = rng.poisson(mean_villages, size=count)
    centres = np.repeat(settlements, villages, axis=0) \
        + rng.normal(0, params.cluster_spread, size=(villages.sum(), 2))
    pitch = params.building_spacing
    yards, roofs = [], [np.empty(0, dtype=object)]
    for x, y in centres:
        a = rng.uniform(*params.village_radius)
        outline, turn = _wobbly_ellipse(rng, x, y, a, a * rng.uniform(0.7, 1.0))
        cos, sin = np.cos(turn), np.sin(turn)
        steps = np.arange(-int(1.2 * a / pitch), int(1.2 * a / pitch) + 1) * float(pitch)
        u, v = (g.ravel() + rng.uniform(-1, 1, g.size) for g in np.meshgrid(steps, steps))
        cx, cy = x + u * cos - v * sin, y + u * sin + v * cos
        keep = shapely.contains_xy(outline, cx, cy) & (rng.random(u.size) < params.occupancy)
        centres_xy = np.column_stack([cx[keep], cy[keep]])
        angles = turn + rng.normal(0, 0.05, len(centres_xy))
        village = _roofs(rng, centres_xy, angles, params.building_side)
        if yards:
            taken = shapely.union_all(yards)
            village = village[~shapely.intersects(taken, village)]
        roofs.append(village)
        yards.append(outline.buffer(pitch / 2))
    return yards, np.concatenate(roofs)


def _farms(rng: np.random.Generator, frame: shapely.Polygon,
           params: SparseSceneParams) -> tuple[list[shapely.Geometry], np.ndarray]:
    """Isolated farms: one to three roofs of one orientation on a small round yard.

    Returns:
        The yards and all the roofs (a shapely array).

    """
    count = rng.poisson(frame.area / params.farm_spacing**2)
    pitch = params.building_spacing
    yards, roofs = [], [np.empty(0, dtype=object)]
    for x, y in _random_points(rng, frame, count):
        n = int(rng.integers(1, 4))
        centres = np.array([x, y]) + rng.normal(0, pitch / 2, size=(n, 2))
        roofs.append(_roofs(rng, centres, np.full(n, rng.uniform(0, np.pi / 2)),
                            params.building_side))
        yards.append(shapely.Point(x, y).buffer(rng.uniform(1.5, 2.5) * pitch))
    return yards, np.concatenate(roofs)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise with features about ``cell`` pixels wide."""
    coarse = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    big = Image.fromarray(coarse, mode="F").resize(
        ((width // cell + 2) * cell, (height // cell + 2) * cell), Image.Resampling.BICUBIC)
    return np.asarray(big)[:height, :width]


def _render(rng: np.random.Generator, label: np.ndarray,
            textures: dict[int, Texture] = TEXTURES) -> np.ndarray:
    """Paint each id's texture where ``label`` holds it, under a soft illumination."""
    height, width = label.shape
    image = np.zeros((3, height, width), dtype=np.float32)
    done: set[Texture] = set()
    for texture in textures.values():
        if texture in done:
            continue
        done.add(texture)
        ids = [c for c, t in textures.items() if t == texture]
        where = np.isin(label, ids)
        n = int(where.sum())
        if n == 0:
            continue
        shade = 0.0
        if texture.blotch:
            shade = texture.blotch * _smooth_noise(rng, height, width, texture.blotch_cell)[where]
        for band in range(3):
            image[band][where] = (texture.color[band] + shade
                                  + rng.normal(0, texture.grain, n).astype(np.float32))
    light = 1 + 0.06 * _smooth_noise(rng, height, width, max(64, min(height, width) // 2))
    image *= light * rng.uniform(0.9, 1.1)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_scene(scene: SyntheticScene, image_path: str | os.PathLike,
                label_path: str | os.PathLike | None = None,
                vector_path: str | os.PathLike | None = None, *,
                crs: str = "EPSG:32631", transform: Affine | None = None) -> None:
    """Write a scene as a georeferenced image GeoTIFF, label GeoTIFF and polygons.

    The label GeoTIFF carries the class palette as a colour table and the class
    names in its band description; the polygons carry the class name in the
    :data:`LABEL_FIELD` attribute (GeoPackage, GeoJSON or Shapefile, by suffix).

    Args:
        scene: The scene to write.
        image_path: Destination of the RGB image.
        label_path: Destination of the class raster, if wanted.
        vector_path: Destination of the polygons, if wanted.
        crs: Coordinate reference system of all outputs.
        transform: Pixel-to-map transform of the scene's grid (default: 0.5 m
            pixels at easting 500000, northing 5000000).

    """
    import rasterio

    transform = transform or Affine(0.5, 0, 500000, 0, -0.5, 5000000)
    _, height, width = scene.image.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "crs": crs,
               "transform": transform, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate"}
    with rasterio.open(image_path, "w", count=3, dtype="uint8", photometric="RGB",
                       **profile) as dst:
        dst.write(scene.image)
    if label_path is not None:
        with rasterio.open(label_path, "w", count=1, dtype="uint8", nodata=255,
                           **profile) as dst:
            dst.write(scene.label, 1)
            dst.write_colormap(1, {i: (*c, 255) for i, c in enumerate(scene.class_colors)})
            dst.set_band_description(1, ",".join(scene.class_names))
    if vector_path is not None:
        features_on_map(scene, crs, transform).to_file(vector_path)


def features_on_map(scene: SyntheticScene, crs: str, transform: Affine) -> gpd.GeoDataFrame:
    """Move the scene's polygons from pixel coordinates onto the map grid ``transform``.

    Returns:
        A ``geopandas.GeoDataFrame`` in ``crs``.

    """
    features = scene.features.copy()
    params = [transform.a, transform.b, transform.d, transform.e, transform.xoff, transform.yoff]
    features["geometry"] = [affine_transform(g, params) for g in features.geometry]
    return features.set_crs(crs, allow_override=True)


@dataclass
class CustomDatasetFiles:
    """The files of a synthetic dataset in the ``custom`` layout.

    Attributes:
        images: Image GeoTIFFs.
        labels: Class GeoTIFFs on the same grids.
        vector: One vector file with the polygons of every scene.
        classes: The class file (names and colours, JSON).

    """

    images: list[Path]
    labels: list[Path]
    vector: Path
    classes: Path


def write_classes_file(path: str | os.PathLike) -> Path:
    """Write the synthetic classes as a class file (see ``datasets.custom``)."""
    path = Path(path)
    entries = [{"name": n, "color": list(c)} for n, c in zip(CLASS_NAMES, CLASS_COLORS,
                                                              strict=True)]
    path.write_text(json.dumps({"classes": entries}, indent=1) + "\n")
    return path


def write_custom_dataset(root: str | os.PathLike, count: int = 4, size: int = 512,
                         seed: int = 0, *, crs: str = "EPSG:32631", pixel_size: float = 0.5,
                         params: SceneParams | None = None,
                         vector_name: str = "labels.gpkg") -> CustomDatasetFiles:
    """Write ``count`` seeded scenes as a dataset in the ``custom`` layout.

    Scene ``i`` (seed ``seed + i``) lies on a grid of ``pixel_size`` metres, the
    scenes side by side from west to east with a gap between them, so that each
    image is one tile of a larger area::

        root/images/scene_000.tif ...   root/labels/scene_000.tif ...
        root/labels.gpkg                root/classes.json

    Args:
        root: Output folder (created).
        count: Number of scenes.
        size: Side of each scene in pixels.
        seed: Seed of the first scene.
        crs: CRS of every file.
        pixel_size: Pixel size in CRS units.
        params: Feature sizes (see :class:`SceneParams`).
        vector_name: File name of the polygons (suffix picks the format).

    Returns:
        The paths written.

    """
    import pandas as pd

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    images, labels, frames = [], [], []
    for i in range(count):
        scene = generate_scene(size, seed + i, params)
        transform = Affine(pixel_size, 0, 500000 + i * (size + 64) * pixel_size,
                           0, -pixel_size, 5000000)
        image = root / "images" / f"scene_{i:03d}.tif"
        label = root / "labels" / f"scene_{i:03d}.tif"
        write_scene(scene, image, label, crs=crs, transform=transform)
        frames.append(features_on_map(scene, crs, transform))
        images.append(image)
        labels.append(label)
    vector = root / vector_name
    pd.concat(frames, ignore_index=True).set_crs(crs, allow_override=True).to_file(vector)
    classes = write_classes_file(root / "classes.json")
    return CustomDatasetFiles(images=images, labels=labels, vector=vector, classes=classes)


#: DeepGlobe class of each synthetic class (urban, agriculture, rangeland, forest, water,
#: barren, unknown): parks become forest, meadows rangeland, roads barren land.
DEEPGLOBE_CLASSES = (0, 1, 3, 2, 5, 0)


def write_deepglobe_layout(root: str | os.PathLike, count: int = 2, size: int = 256,
                           seed: int = 0, folder: str = "training_data",
                           ids: list[str] | None = None) -> list[Path]:
    """Write synthetic scenes in the DeepGlobe Land Cover layout (RGB-coded masks).

    ``root/data/<folder>/images/<id>_sat.jpg`` and ``.../masks/<id>_mask.png``,
    classes mapped by :data:`DEEPGLOBE_CLASSES`, a corner of each mask marked
    ``unknown``.

    Args:
        root: Dataset root.
        count: Number of images (ignored when ``ids`` is given).
        size: Image side in pixels.
        seed: Seed of the first scene.
        folder: ``training_data`` or ``test_data``.
        ids: Image ids to use (default ``<seed + i>``).

    Returns:
        The image paths.

    """
    from glnet_geo.classes import DEEPGLOBE

    ids = ids or [str(100000 + seed + i) for i in range(count)]
    images, masks = Path(root) / "data" / folder / "images", Path(root) / "data" / folder / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    palette = np.asarray(DEEPGLOBE.colors, dtype=np.uint8)
    written = []
    for i, image_id in enumerate(ids):
        scene = generate_scene(size, seed + i)
        classes = np.asarray(DEEPGLOBE_CLASSES, dtype=np.uint8)[scene.label]
        classes[: size // 16, : size // 16] = DEEPGLOBE.ignore_index
        path = images / f"{image_id}_sat.jpg"
        Image.fromarray(scene.image.transpose(1, 2, 0)).save(path, quality=95)
        Image.fromarray(palette[classes]).save(masks / f"{image_id}_mask.png")
        written.append(path)
    return written


def write_inria_layout(root: str | os.PathLike, cities: tuple[str, ...] = ("austin", "tyrol-w"),
                       tiles_per_city: int = 6, size: int = 256, seed: int = 0) -> list[Path]:
    """Write synthetic scenes in the Inria Aerial layout (0 / 255 building masks).

    ``root/AerialImageDataset/train/images/<city><n>.tif`` and ``.../gt/<city><n>.tif``
    (georeferenced), buildings 255, everything else 0.

    Returns:
        The image paths.

    """
    import rasterio

    train = Path(root) / "AerialImageDataset" / "train"
    (train / "images").mkdir(parents=True, exist_ok=True)
    (train / "gt").mkdir(parents=True, exist_ok=True)
    written = []
    for c, city in enumerate(cities):
        for n in range(1, tiles_per_city + 1):
            scene = generate_scene(size, seed + c * 100 + n)
            scene.label = np.where(scene.label == BUILDING, 255, 0).astype(np.uint8)
            path = train / "images" / f"{city}{n}.tif"
            write_scene(scene, path, crs="EPSG:32616")
            with rasterio.open(path) as src:
                profile = src.profile | {"count": 1, "photometric": "MINISBLACK"}
            with rasterio.open(train / "gt" / f"{city}{n}.tif", "w", **profile) as dst:
                dst.write(scene.label, 1)
            written.append(path)
    return written
