"""Class rasters for the vectorize tests, and what to expect of their polygons."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import rasterio.features
from affine import Affine
from rasterio.transform import from_origin

UTM = "EPSG:32633"
PIXEL = 0.5  # metres
UTM_TRANSFORM = from_origin(500_000.0, 4_000_000.0, PIXEL, PIXEL)


def write_mask(path: Path, data: np.ndarray, *, crs: str | None = UTM,
               transform: Affine = UTM_TRANSFORM, nodata: float | None = None,
               mask: np.ndarray | None = None, band_tags: dict | None = None,
               tags: dict | None = None) -> Path:
    """A single-band class GeoTIFF (optionally with an internal mask and tags)."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data)
        if mask is not None:
            dst.write_mask(np.where(mask, 255, 0).astype(np.uint8))
        if band_tags:
            dst.update_tags(1, **band_tags)
        if tags:
            dst.update_tags(**tags)
    return path


def count_regions(data: np.ndarray, valid: np.ndarray, connectivity: int) -> int:
    """Connected regions of equal value among valid pixels (breadth-first search)."""
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    seen = ~valid.copy()
    height, width = data.shape
    regions = 0
    for i, j in zip(*np.nonzero(~seen), strict=True):
        if seen[i, j]:
            continue
        regions += 1
        seen[i, j] = True
        queue = deque([(i, j)])
        while queue:
            y, x = queue.popleft()
            for dy, dx in steps:
                v, u = y + dy, x + dx
                if (0 <= v < height and 0 <= u < width and not seen[v, u]
                        and data[v, u] == data[y, x]):
                    seen[v, u] = True
                    queue.append((v, u))
    return regions


def blobs(height: int, width: int, classes: int, cell: int, seed: int) -> np.ndarray:
    """Seeded blocky classes with single-pixel noise (regions of many shapes and sizes)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (height // cell + 1, width // cell + 1))
    data = np.kron(coarse, np.ones((cell, cell), int))[:height, :width]
    noise = rng.random((height, width)) < 0.08
    data[noise] = rng.integers(0, classes, noise.sum())
    return data.astype(np.uint8)


def read(path: Path) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(path, layer=path.stem)


def assert_matches_pixels(frame: gpd.GeoDataFrame, data: np.ndarray, valid: np.ndarray,
                          connectivity: int, pixel_area: float, rel: float) -> None:
    """Feature count = connected regions; per class, area = pixel count x pixel area."""
    assert len(frame) == count_regions(data, valid, connectivity)
    assert frame.is_valid.all()
    for value in np.unique(data[valid]):
        expected = (data[valid] == value).sum() * pixel_area
        assert frame.area_m2[frame.class_id == value].sum() == pytest.approx(expected, rel=rel)


def palette_mask(path: Path) -> Path:
    """Classes 0..2 with names and a colour table (as predict writes them)."""
    data = blobs(16, 16, classes=3, cell=4, seed=3)
    write_mask(path, data, band_tags={"class_names": '["bare", "crop", "water"]'})
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, {0: (200, 200, 200, 255), 1: (250, 200, 0, 255),
                               2: (0, 0, 255, 255)})
    return path


def categories_of(qml: str) -> list[tuple[str, str]]:
    """(class name, fill colour) of each category of a QGIS categorised style."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(qml)
    assert root.find("renderer-v2").get("attr") == "class_name"
    colors = {s.get("name"): s.find(".//Option[@name='color']").get("value")
              for s in root.iter("symbol")}
    return [(c.get("value"), colors[c.get("symbol")]) for c in root.iter("category")]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))
