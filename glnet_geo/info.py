"""Summaries of checkpoints and rasters for ``glnet-geo info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glnet_geo.errors import InputError


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
        return {
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


def describe(path: Path) -> dict[str, Any]:
    """Describe ``path``: a glnet-geo checkpoint or anything rasterio opens."""
    if Path(path).suffix.lower() in {".pt", ".pth", ".ckpt"}:
        return describe_checkpoint(Path(path))
    try:
        return describe_raster(path)
    except Exception as exc:
        raise InputError(f"{path} is neither a glnet-geo checkpoint nor a raster GDAL can open "
                         f"({exc}); check the path") from None
