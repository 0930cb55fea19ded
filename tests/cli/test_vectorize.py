from __future__ import annotations

import json
import signal

import numpy as np
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

from glnet_geo.cli import main


def write_mask(path, data, crs="EPSG:32633"):
    data = np.asarray(data)
    data = data[None] if data.ndim == 2 else data
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs,
                       transform=from_origin(500_000.0, 4_000_000.0, 1.0, 1.0)) as dst:
        dst.write(data)
        dst.update_tags(1, class_names=json.dumps(["ground", "building"]))
    return path


def classes():
    data = np.zeros((40, 40), np.uint8)
    data[5:15, 5:20] = 1
    data[25:35, 22:38] = 1
    data[20, 0:40] = 2
    return data


def run(*args):
    return CliRunner().invoke(main, ["vectorize", *map(str, args)])


def test_writes_polygons_with_options(tmp_path):
    mask = write_mask(tmp_path / "m.tif", classes())
    out = tmp_path / "b.geojson"
    result = run(mask, "-o", out, "--classes", "1", "--regularize", "--min-area", "20",
                 "--block-size", "16")
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    frame = pyogrio.read_dataframe(out)
    assert frame.crs == "EPSG:4326"
    assert sorted(frame.area_m2.round()) == [150, 160]
    assert set(frame.class_name) == {"building"}


def test_format_option_and_class_names(tmp_path):
    mask = write_mask(tmp_path / "m.tif", classes())
    out = tmp_path / "all.data"
    result = run(mask, "-o", out, "--format", "FlatGeobuf", "--classes", "1,2",
                 "--class-names", "bare,house,road", "--connectivity", "8")
    assert result.exit_code == 0, result.output
    frame = pyogrio.read_dataframe(out)
    assert set(frame.class_name) == {"house", "road"}
    assert len(frame) == 3


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    mask = write_mask(tmp_path / "m.tif", classes())
    existing = tmp_path / "exists.gpkg"
    existing.write_text("x")
    cases = {
        "already exists": [mask, "-o", existing],
        "unknown polygon format 'kml'": [mask, "-o", tmp_path / "o.kml", "--format", "kml"],
        "cannot tell the polygon format": [mask, "-o", tmp_path / "o.kml"],
        "2 bands": [write_mask(tmp_path / "rgb.tif", np.zeros((2, 8, 8), np.uint8)),
                    "-o", tmp_path / "o.gpkg"],
        "no CRS": [write_mask(tmp_path / "nocrs.tif", classes(), crs=None),
                   "-o", tmp_path / "o.gpkg"],
        "not a list of integer": [mask, "-o", tmp_path / "o.gpkg", "--classes", "roads"],
        "does not exist": [tmp_path / "missing.tif", "-o", tmp_path / "o.gpkg"],
        "connectivity 6 is not 4 or 8": [mask, "-o", tmp_path / "o.gpkg", "--connectivity", "6"],
        "--simplify -2": [mask, "-o", tmp_path / "o.gpkg", "--simplify", "-2"],
    }
    for message, args in cases.items():
        result = run(*args)
        assert result.exit_code == 1, (message, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert existing.read_text() == "x"
    assert not (tmp_path / "o.gpkg").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_damaged_class_raster_is_one_line_and_writes_nothing(tmp_path, corrupt_last_tile):
    mask = tmp_path / "m.tif"
    with rasterio.open(mask, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500_000.0, 4_000_000.0, 1, 1),
                       tiled=True, blockxsize=16, blockysize=16, compress="deflate") as dst:
        dst.write(np.indices((64, 64)).sum(0).astype(np.uint8)[None] // 20)
    corrupt_last_tile(mask)
    (tmp_path / "out").mkdir()
    result = run(mask, "-o", tmp_path / "out" / "polygons.gpkg")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: class raster"), result.output
    assert "m.tif cannot be read at window" in lines[0] and "Decoding error" in lines[0]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="POSIX file size limit")
@pytest.mark.parametrize("suffix", [".gpkg", ".geojson"])
def test_a_full_file_system_is_one_line_and_keeps_the_output(tmp_path, run_glnet, suffix):
    rng = np.random.default_rng(0)
    mask = write_mask(tmp_path / "m.tif", rng.integers(0, 3, (300, 300), dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / f"polygons{suffix}").write_text("an earlier result")
    done = run_glnet("vectorize", mask, "-o", out / f"polygons{suffix}", "--overwrite",
                     file_size_limit=256 * 1024)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write polygons{suffix}"), lines
    assert "no existing output was touched" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == [f"polygons{suffix}"]
    assert (out / f"polygons{suffix}").read_text() == "an earlier result"


def test_help_lists_every_format():
    from glnet_geo.vectorize import VectorFormat

    vectorize = " ".join(CliRunner().invoke(main, ["vectorize", "--help"]).output.split())
    predict = " ".join(CliRunner().invoke(main, ["predict", "--help"]).output.split())
    for fmt in VectorFormat:
        assert f"{fmt.value} ({', '.join(fmt.record.suffixes)}" in vectorize
        assert fmt.suffix in predict
    suffixes = ", ".join(f.suffix for f in VectorFormat)
    assert f"Also write polygons (format from the extension: {suffixes})." in predict
