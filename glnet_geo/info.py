"""Summaries of checkpoints and rasters for ``glnet-geo info``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glnet_geo.errors import InputError

if TYPE_CHECKING:
    import rasterio


@dataclass(frozen=True)
class ClassCount:
    """How much of a class raster one class covers.

    Attributes:
        id: The class id (pixel value).
        name: Its name (``class_<id>`` when the raster names none).
        color: Its palette colour as ``#rrggbb``, or None without a palette.
        pixels: Number of pixels.
        area_m2: Their area in square metres (equal-area for geographic
            rasters), or None for a raster without a CRS.

    """

    id: int
    name: str
    color: str | None
    pixels: int
    area_m2: float | None


def is_class_raster(src: rasterio.DatasetReader) -> bool:
    """Tell a class raster: one integer band with class names or a palette."""
    from rasterio.enums import ColorInterp

    from glnet_geo.io.writer import CLASS_NAMES_TAG

    if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        return False
    return (CLASS_NAMES_TAG in src.tags(1) or CLASS_NAMES_TAG in src.tags()
            or src.colorinterp[0] is ColorInterp.palette)


def class_counts(src: rasterio.DatasetReader) -> list[ClassCount]:
    """Count the pixels and the area of each class, reading block by block.

    Memory stays one block whatever the raster's size. Nodata and masked
    pixels are left out; every named class is listed, present or not. Pixel
    areas come from :class:`glnet_geo.vectorize.PixelAreas`, row by row (they
    vary with latitude in geographic and Mercator CRSs).
    """
    import shapely

    from glnet_geo.vectorize import PixelAreas, read_class_names

    names = read_class_names(src)
    try:
        palette = src.colormap(1)
    except ValueError:  # no colour table
        palette = {}
    areas = (PixelAreas(src.crs, src.transform, (src.width / 2, src.height / 2))
             if src.crs is not None else None)
    pixels: dict[int, int] = {}
    square_metres: dict[int, float] = {}
    row_areas: dict[int, float] = {}
    for _, window in src.block_windows(1):
        data = src.read(1, window=window, masked=True)
        valid = ~np.ma.getmaskarray(data)
        values = np.asarray(data)[valid].astype(np.int64)
        if not values.size:
            continue
        if areas is not None:
            rows = [window.row_off + r for r in range(window.height)]
            missing = [r for r in rows if r not in row_areas]
            if missing:
                boxes = shapely.box(window.col_off, np.array(missing), window.col_off + 1,
                                    np.array(missing) + 1)
                row_areas.update(zip(missing, areas(boxes).tolist(), strict=True))
            weights = np.broadcast_to(np.array([row_areas[r] for r in rows])[:, None],
                                      valid.shape)[valid]
        base = min(int(values.min()), 0)  # signed rasters may hold negative ids
        count = np.bincount(values - base)
        area = np.bincount(values - base, weights=weights) if areas is not None else None
        for index in np.flatnonzero(count):
            value = int(index) + base
            pixels[value] = pixels.get(value, 0) + int(count[index])
            if area is not None:
                square_metres[value] = square_metres.get(value, 0.0) + float(area[index])
    result = []
    for value in sorted(set(pixels) | set(names)):
        color = palette.get(value)
        result.append(ClassCount(
            id=value, name=names.get(value, f"class_{value}"),
            color="#{:02x}{:02x}{:02x}".format(*color[:3]) if color else None,
            pixels=pixels.get(value, 0),
            area_m2=square_metres.get(value, 0.0) if areas is not None else None))
    return result


def describe_checkpoint(path: Path) -> dict[str, Any]:
    """Summarise a checkpoint without building the model."""
    from glnet_geo.checkpoint import ModelConfig, read_checkpoint

    payload = read_checkpoint(path)
    config = ModelConfig.from_dict(payload["config"])
    n_params = sum(v.numel() for v in payload["state_dict"].values())
    return {
        "kind": "glnet-geo checkpoint",
        "version": config.version,
        "stage": config.stage.value,
        "mode": config.stage.mode.value,
        "backbone": config.backbone,
        "bands": config.bands,
        "classes": ", ".join(f"{i}={n}" for i, n in enumerate(config.class_names)),
        "ignore_index": config.ignore_index,
        "normalization": (f"scale={config.normalization.scale} mean={config.normalization.mean}"
                          f" std={config.normalization.std}"),
        "global_size": config.global_size,
        "patch_size": config.patch_size,
        "min_overlap": config.min_overlap,
        "scene_size": config.scene_size,
        "training imagery": _imagery(config.imagery),
        "parameters": f"{n_params:,}",
    }


def _imagery(profile: Any) -> str | None:
    """One line about a checkpoint's training imagery."""
    if profile is None:
        return None
    parts = [profile.dtype]
    if profile.low is not None and profile.high is not None:
        parts.append("2-98% " + ", ".join(f"{lo:g}..{hi:g}" for lo, hi in
                                          zip(profile.low, profile.high, strict=True)))
    if profile.pixel_size is not None:
        parts.append(f"{profile.pixel_size:g} m pixels")
    return ", ".join(parts)


def describe_raster(path: Path) -> dict[str, Any]:
    """Summarise a raster: size, CRS, bands, nodata, overviews."""
    import rasterio

    with rasterio.open(path) as src:
        info = {
            "kind": f"raster ({src.driver})",
            "size": f"{src.width} x {src.height} px",
            "bands": src.count,
            "dtypes": ", ".join(sorted(set(src.dtypes))),
            "crs": src.crs.to_string() if src.crs else None,
            "transform": tuple(src.transform)[:6],
            "nodata": src.nodata,
            "color interp": ", ".join(c.name for c in src.colorinterp),
            "overviews": src.overviews(1),
            "block shape": src.block_shapes[0],
        }
        if is_class_raster(src):
            info["kind"] = f"class raster ({src.driver})"
            info["classes"] = [asdict(c) for c in class_counts(src)]
        return info


def describe(path: Path) -> dict[str, Any]:
    """Describe ``path``: a glnet-geo checkpoint or anything rasterio opens."""
    if Path(path).suffix.lower() in {".pt", ".pth", ".ckpt"}:
        return describe_checkpoint(Path(path))
    try:
        return describe_raster(path)
    except Exception as exc:
        raise InputError(f"{path} is neither a glnet-geo checkpoint nor a raster GDAL can open "
                         f"({exc}); check the path") from None
