"""glnet-geo: GLNet segmentation of ultra-high-resolution GeoTIFFs.

The public API is imported lazily so that ``import glnet_geo`` stays fast and
light (torch, rasterio and geopandas load only when a function needs them).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__version__ = "0.1.0"


def lazy_attributes(module: str, exports: Mapping[str, str]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of a package face whose names load lazily.

    Args:
        module: The face's ``__name__``.
        exports: Public name -> the module that defines it, imported on the
            name's first use (then kept in the face).

    """
    namespace = sys.modules[module].__dict__

    def attribute(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(exports[name]), name)
        return value

    def names() -> list[str]:
        return sorted({*namespace, *exports})

    return attribute, names


_LAZY = {
    "load_checkpoint": "glnet_geo.checkpoint",
    "save_checkpoint": "glnet_geo.checkpoint",
    "ModelConfig": "glnet_geo.checkpoint",
    "predict_raster": "glnet_geo.predict",
    "vectorize_raster": "glnet_geo.vectorize",
}

__all__ = ["__version__", *_LAZY]
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
