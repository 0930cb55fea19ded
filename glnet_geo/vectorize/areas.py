"""Square metres of polygons traced in a raster's pixel coordinates, and their map coordinates.

In a projected CRS an area is the planar area times the square of the CRS's
linear unit (feet are converted); in a geographic CRS, and in Mercator CRSs
whose planar areas are meaningless away from the equator, it is the area in a
Lambert cylindrical equal-area projection on the raster's own datum (exact
for pixel-edge outlines, whose edges follow meridians and parallels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS


class AreaMethod(Enum):
    """How ``area_m2`` is measured."""

    PLANAR = "planar"
    """Area in the raster's projected CRS, times its linear unit squared."""
    EQUAL_AREA = "equal-area"
    """Area in a cylindrical equal-area projection (geographic and Mercator CRSs)."""


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
