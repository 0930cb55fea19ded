"""vectorize_raster, the driver: its options, outputs and refusals."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
from mask_factory import leftovers, read, write_mask

from glnet_geo.errors import InputError, OutputError, OutputExistsError
from glnet_geo.vectorize import vectorize_raster


def test_nothing_to_write_gives_an_empty_layer_and_one_warning(tmp_path, caplog):
    mask = write_mask(tmp_path / "z.tif", np.zeros((8, 8), np.uint8))
    out = vectorize_raster(mask, tmp_path / "z.gpkg", classes=[7])
    info = pyogrio.read_info(out, layer="z")
    assert info["features"] == 0
    assert list(info["fields"]) == ["class_id", "class_name", "area_m2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["wrote no feature to " + str(out) + ": z.tif has no class 7 pixel; "
                        "check --classes and the raster's values"]


def test_existing_output_is_kept_without_overwrite(tmp_path):
    mask = write_mask(tmp_path / "m.tif", np.ones((8, 8), np.uint8))
    out = tmp_path / "o.shp"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        vectorize_raster(mask, out)
    assert out.read_text() == "keep me"
    vectorize_raster(mask, out, overwrite=True)
    assert len(read(out)) == 1
    with pytest.raises(OutputError, match="does not exist"):
        vectorize_raster(mask, tmp_path / "nowhere" / "o.gpkg")


def test_bad_options(tmp_path):
    mask = write_mask(tmp_path / "m.tif", np.ones((8, 8), np.uint8))
    with pytest.raises(InputError, match="connectivity 6"):
        vectorize_raster(mask, tmp_path / "o.gpkg", connectivity=6)
    with pytest.raises(InputError, match="--min-area -1"):
        vectorize_raster(mask, tmp_path / "o.gpkg", min_area=-1)
    with pytest.raises(InputError, match="block size 1"):
        vectorize_raster(mask, tmp_path / "o.gpkg", block_size=1)
    probs = write_mask(tmp_path / "p.tif", np.ones((2, 4, 4), np.uint8))
    with pytest.raises(InputError, match="4x4 px"):
        vectorize_raster(mask, tmp_path / "o.gpkg", probabilities=probs)
    assert leftovers(tmp_path) == []
