import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from affine import Affine
from fresh_process import modules_loaded
from gdal_api import categories
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from glnet_geo.classes import NO_CLASS
from glnet_geo.errors import OutputError, OutputExistsError
from glnet_geo.io.writer import (
    CLASS_NAMES_TAG,
    CogWriter,
    check_output,
    class_raster_writer,
    probability_raster_writer,
)

NAMES = ["water", "forest", "urban"]
COLORS = [(0, 0, 255), (0, 128, 0), (255, 0, 0)]


@pytest.fixture
def like(tmp_path):
    path = tmp_path / "input.tif"
    with rasterio.open(path, "w", driver="GTiff", width=700, height=600, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(0.001, 0, 10.0, 0, -0.0005, 50.0)) as dst:
        dst.write(np.ones((3, 600, 700), np.uint8))
    with rasterio.open(path) as src:
        yield src


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith((".", "tmp")))


def test_class_raster_is_a_cog_with_palette_names_and_nodata(tmp_path, like):
    out = tmp_path / "classes.tif"
    classes = np.random.default_rng(0).integers(0, 3, (600, 700)).astype(np.uint8)
    classes[:50, :50] = NO_CLASS
    writer = class_raster_writer(out, like, NAMES, COLORS, tags={"mode": "glnet"})
    with writer:
        # windows that do not align with the 512 px tiles
        for window in (Window(0, 0, 700, 250), Window(0, 250, 300, 350),
                       Window(300, 250, 400, 350)):
            writer.write(classes[window.toslices()], window)
        writer.finish()
        assert not out.exists()
        writer.publish()
    assert leftovers(tmp_path) == []
    assert cog_validate(out, quiet=True)[0]
    with rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.width, dst.height) == (
            like.crs, like.transform, like.width, like.height)
        assert dst.dtypes[0] == "uint8" and dst.nodata == NO_CLASS
        assert np.array_equal(dst.read(1), classes)
        assert json.loads(dst.tags(1)[CLASS_NAMES_TAG]) == NAMES
        assert dst.tags(1)["class_2"] == "urban"
        assert dst.tags()["mode"] == "glnet"
        assert dst.descriptions == ("class",)
        assert dst.colormap(1)[1] == (0, 128, 0, 255)
        assert dst.overviews(1), "a COG of this size has overviews"
        assert dst.profile["tiled"] and dst.compression is not None


def test_class_raster_comes_with_category_names_and_a_qgis_style(tmp_path, like):
    out = tmp_path / "classes.tif"
    with class_raster_writer(out, like, NAMES, COLORS) as writer:
        writer.write(np.zeros((600, 700), np.uint8), Window(0, 0, 700, 600))
        writer.finish()
        assert not (tmp_path / "classes.qml").exists()
        writer.publish()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "classes.qml", "classes.tif", "classes.tif.aux.xml", "input.tif"]
    assert cog_validate(out, quiet=True)[0]
    names, table = categories(out)
    assert names == NAMES
    assert [(r["value"], r["class_name"], r["red"], r["green"], r["blue"]) for r in table] == [
        (str(i), n, *map(str, c)) for i, (n, c) in enumerate(zip(NAMES, COLORS, strict=True))]
    entries = ET.parse(tmp_path / "classes.qml").getroot().findall(".//paletteEntry")
    assert [(e.get("value"), e.get("label"), e.get("color")) for e in entries] == [
        ("0", "water", "#0000ff"), ("1", "forest", "#008000"), ("2", "urban", "#ff0000")]



def test_class_overviews_hold_the_majority_class(tmp_path, like):
    out = tmp_path / "classes.tif"
    majority = np.random.default_rng(2).integers(0, 3, (300, 350)).astype(np.uint8)
    classes = np.kron(majority, np.ones((2, 2), np.uint8))
    classes[::2, ::2] = (majority + 1) % 3  # the top-left pixel, which nearest would pick
    with class_raster_writer(out, like, NAMES, COLORS) as writer:
        writer.write(classes, Window(0, 0, 700, 600))
        writer.finish()
        writer.publish()
    with rasterio.open(out, OVERVIEW_LEVEL=0) as overview:
        assert np.array_equal(overview.read(1), majority)

def test_probability_raster_has_internal_mask(tmp_path, like):
    out = tmp_path / "probs.tif"
    probs = np.random.default_rng(1).integers(0, 256, (3, 600, 700)).astype(np.uint8)
    valid = np.ones((600, 700), bool)
    valid[100:200, 100:200] = False
    probs[:, ~valid] = 0
    with probability_raster_writer(out, like, NAMES) as writer:
        writer.write(probs, Window(0, 0, 700, 600), mask=valid)
        writer.finish()
        writer.publish()
    assert cog_validate(out, quiet=True)[0]
    with rasterio.open(out) as dst:
        assert dst.count == 3 and dst.nodata is None
        assert dst.descriptions == tuple(NAMES)
        assert dst.scales == (1 / 255,) * 3 and dst.offsets == (0.0,) * 3
        assert np.array_equal(dst.read(), probs)
        assert np.array_equal(dst.dataset_mask() != 0, valid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.tif", "probs.tif"]


def test_exception_leaves_nothing_behind(tmp_path, like):
    out = tmp_path / "classes.tif"
    with pytest.raises(KeyboardInterrupt):
        with class_raster_writer(out, like, NAMES, COLORS) as writer:
            writer.write(np.zeros((10, 10), np.uint8), Window(0, 0, 10, 10))
            raise KeyboardInterrupt
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_discard_after_finish_removes_the_cog(tmp_path, like):
    out = tmp_path / "classes.tif"
    writer = CogWriter(out, crs=like.crs, transform=like.transform, width=20, height=20, count=1)
    writer.open()
    writer.write(np.zeros((20, 20), np.uint8), Window(0, 0, 20, 20))
    writer.finish()
    assert any(p.exists() for p in writer.temporary_paths)
    writer.discard()
    assert leftovers(tmp_path) == [] and not out.exists()


def test_check_output(tmp_path):
    out = tmp_path / "a.tif"
    assert check_output(out) == out
    out.write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output(out)
    assert check_output(out, overwrite=True) == out
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "missing" / "a.tif")
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(out / "b.tif")  # the "directory" is a file


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write in read-only directories")
def test_check_output_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="writable"):
            check_output(locked / "a.tif")
    finally:
        locked.chmod(0o700)


def test_two_writers_of_one_output_never_mix_and_the_second_refuses(tmp_path, like):
    out = tmp_path / "classes.tif"
    first = class_raster_writer(out, like, NAMES, COLORS)
    second = class_raster_writer(out, like, NAMES, COLORS)
    first.open()
    second.open()  # the first's temporaries are held, so the second leaves them alone
    for writer, value in ((first, 1), (second, 2)):
        writer.write(np.full((20, 20), value, np.uint8), Window(0, 0, 20, 20))
        writer.finish()
    first.publish(overwrite=False)
    with pytest.raises(OutputExistsError, match="appeared while this run was writing it"):
        second.publish(overwrite=False)
    second.discard()
    assert leftovers(tmp_path) == []
    with rasterio.open(out) as src:
        assert (src.read(1, window=Window(0, 0, 20, 20)) == 1).all()


def test_with_overwrite_the_last_complete_writer_wins_atomically(tmp_path, like):
    out = tmp_path / "classes.tif"
    writers = [class_raster_writer(out, like, NAMES, COLORS) for _ in range(2)]
    for value, writer in enumerate(writers, start=1):
        writer.open()
        writer.write(np.full((20, 20), value, np.uint8), Window(0, 0, 20, 20))
        writer.finish()
    for writer in writers:
        writer.publish(overwrite=True)
    assert leftovers(tmp_path) == []
    with rasterio.open(out) as src:
        assert (src.read(1, window=Window(0, 0, 20, 20)) == 2).all()


def test_a_write_that_fails_for_space_is_one_output_error(tmp_path):
    import errno

    from glnet_geo.io.writer import writing

    with pytest.raises(OutputError, match=r"no space left on .* while writing a\.tif"):
        with writing(tmp_path / "a.tif"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(PermissionError):  # other failures are not space
        with writing(tmp_path / "a.tif"):
            raise PermissionError(errno.EACCES, "Permission denied")


def test_rio_cogeo_is_imported_only_to_validate_a_cog():
    # 0.1 s and 21 MiB a process, which predict's peak need not hold
    assert modules_loaded("import glnet_geo.predict, glnet_geo.io.writer", ["rio_cogeo"]) == []
