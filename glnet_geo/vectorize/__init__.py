"""Class raster -> GIS polygons: one feature per connected region, any raster size.

:func:`vectorize_raster` is the entry point (``glnet-geo vectorize`` and
``predict --polygons`` call it); the names below are the package's public
API, each defined in the module of its concept:

- :mod:`~glnet_geo.vectorize.formats`: the output formats, one record each
  (:class:`VectorFormat`), and the checks of an output path;
- :mod:`~glnet_geo.vectorize.source`: the class raster's checks, class names and
  palette, the probabilities raster;
- :mod:`~glnet_geo.vectorize.blocks`: reading and polygonizing one block;
- :mod:`~glnet_geo.vectorize.seams`: joining the pieces of regions cut by block
  seams (with :mod:`~glnet_geo.vectorize.dissolve`);
- :mod:`~glnet_geo.vectorize.finishing`: min-area, hole filling, regularization
  (:mod:`~glnet_geo.vectorize.regularize`), attributes;
- :mod:`~glnet_geo.vectorize.areas`: square metres and map coordinates;
- :mod:`~glnet_geo.vectorize.output`: staged writing and styles;
- :mod:`~glnet_geo.vectorize.raster`: :func:`vectorize_raster`, which drives them.

The names are imported on first use, so that importing a module of the
package (the command line's help reads :func:`~glnet_geo.vectorize.formats.describe`)
loads neither numpy nor GDAL. Modules inside the package import each other,
never this one.
"""

from __future__ import annotations

from glnet_geo import lazy_attributes

#: Public name -> the module defining it.
_EXPORTS = {
    "vectorize_raster": "glnet_geo.vectorize.raster",
    "VectorFormat": "glnet_geo.vectorize.formats",
    "FormatRecord": "glnet_geo.vectorize.formats",
    "StyleHome": "glnet_geo.vectorize.formats",
    "resolve_format": "glnet_geo.vectorize.formats",
    "check_output": "glnet_geo.vectorize.formats",
    "output_files": "glnet_geo.vectorize.formats",
    "check_class_raster": "glnet_geo.vectorize.source",
    "read_class_names": "glnet_geo.vectorize.source",
    "SUPPORTED_DTYPES": "glnet_geo.vectorize.source",
    "CLASS_NAMES_TAG": "glnet_geo.io.writer",
    "Connectivity": "glnet_geo.vectorize.blocks",
    "DEFAULT_BLOCK_SIZE": "glnet_geo.vectorize.blocks",
    "block_rows": "glnet_geo.vectorize.blocks",
    "CHUNK_VERTICES": "glnet_geo.vectorize.seams",
    "CHUNK_FEATURES": "glnet_geo.vectorize.seams",
    "AreaMethod": "glnet_geo.vectorize.areas",
    "PixelAreas": "glnet_geo.vectorize.areas",
    "area_method": "glnet_geo.vectorize.areas",
    "pixel_to_map": "glnet_geo.vectorize.areas",
    "regularize_polygon": "glnet_geo.vectorize.regularize",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
