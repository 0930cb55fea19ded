"""The class raster: its names, and the rasters refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mask_factory import leftovers, read, write_mask

from glnet_geo.errors import InputError
from glnet_geo.vectorize import vectorize_raster


@pytest.mark.parametrize(("band_tags", "tags", "override", "expected"), [
    ({"class_names": json.dumps(["water", "forest"])}, None, None, ["water", "forest"]),
    (None, {"class_names": json.dumps(["sea", "wood"])}, None, ["sea", "wood"]),
    ({"class_names": json.dumps(["water", "forest"])}, None, ["a", "b"], ["a", "b"]),
    (None, None, None, ["class_0", "class_1"]),
])
def test_class_names(tmp_path, band_tags, tags, override, expected):
    data = np.zeros((8, 8), np.uint8)
    data[:, 4:] = 1
    mask = write_mask(tmp_path / "n.tif", data, band_tags=band_tags, tags=tags)
    frame = read(vectorize_raster(mask, tmp_path / "n.gpkg", class_names=override))
    assert frame.sort_values("class_id").class_name.tolist() == expected


def test_rejects_multiband_float_and_crs_less_rasters(tmp_path):
    two = write_mask(tmp_path / "two.tif", np.zeros((2, 8, 8), np.uint8))
    floats = write_mask(tmp_path / "float.tif", np.zeros((8, 8), np.float32))
    no_crs = write_mask(tmp_path / "nocrs.tif", np.zeros((8, 8), np.uint8), crs=None)
    with pytest.raises(InputError, match="2 bands"):
        vectorize_raster(two, tmp_path / "o.gpkg")
    with pytest.raises(InputError, match="float32"):
        vectorize_raster(floats, tmp_path / "o.gpkg")
    with pytest.raises(InputError, match="no CRS"):
        vectorize_raster(no_crs, tmp_path / "o.gpkg")
    with pytest.raises(InputError, match="does not exist"):
        vectorize_raster(tmp_path / "missing.tif", tmp_path / "o.gpkg")
    assert not (tmp_path / "o.gpkg").exists()
    assert leftovers(tmp_path) == []
