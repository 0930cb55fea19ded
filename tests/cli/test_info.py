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
