from pathlib import Path

import pytest
from click.testing import CliRunner

from glnet_geo.cli import main

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "rasterio" / "RGB.byte.tif").exists(),
                    reason="shared test data not available")
def test_info_on_a_raster():
    result = CliRunner().invoke(main, ["info", str(SHARED / "rasterio" / "RGB.byte.tif")])
    assert result.exit_code == 0, result.output
    assert "EPSG:32618" in result.output
    assert "791 x 718 px" in result.output


def test_info_on_a_missing_file_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["info", str(tmp_path / "nope.tif")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "nope.tif" in lines[0]


def test_info_on_a_missing_checkpoint(tmp_path):
    result = CliRunner().invoke(main, ["info", str(tmp_path / "model.pt")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_info_on_a_class_raster_lists_the_classes(tmp_path):
    import numpy as np
    import rasterio
    from affine import Affine

    path = tmp_path / "classes.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20, height=10, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(2, 0, 0, 0, -2, 20), nodata=255) as dst:
        dst.write(np.repeat(np.array([0, 1], np.uint8), 100).reshape(10, 20), 1)
        dst.update_tags(1, class_names='["water", "forest"]')
        dst.write_colormap(1, {0: (0, 0, 255, 255), 1: (0, 128, 0, 255)})
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "class raster (GTiff)" in lines[0]
    assert lines[-2].split() == ["0", "water", "#0000ff", "100", "50.00", "400.0"]
    assert lines[-1].split() == ["1", "forest", "#008000", "100", "50.00", "400.0"]


def test_info_on_a_checkpoint_lists_its_classes_in_one_line(make_checkpoint):
    result = CliRunner().invoke(main, ["info", str(make_checkpoint())])
    assert result.exit_code == 0, result.output
    assert "classes: 0=water, 1=forest, 2=urban" in result.output
