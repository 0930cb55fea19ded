"""glnet-geo: GLNet segmentation of ultra-high-resolution GeoTIFFs.

The public API is imported lazily so that ``import glnet_geo`` stays fast and
light (torch, rasterio and geopandas load only when a function needs them).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_checkpoint": "glnet_geo.checkpoint",
    "save_checkpoint": "glnet_geo.checkpoint",
    "ModelConfig": "glnet_geo.checkpoint",
    "predict_raster": "glnet_geo.predict",
    "vectorize_raster": "glnet_geo.vectorize",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'glnet_geo' has no attribute {name!r}")
