import numpy as np
import pytest
import rasterio

from glnet_geo.datasets import synthetic
from glnet_geo.datasets.synthetic import CLASS_NAMES, generate_scene


@pytest.fixture(scope="module")
def scene():
    return generate_scene(256, seed=3)


def test_same_seed_same_scene(scene):
    again = generate_scene(256, seed=3)
    np.testing.assert_array_equal(scene.image, again.image)
    np.testing.assert_array_equal(scene.label, again.label)
    assert not np.array_equal(generate_scene(256, seed=4).label, scene.label)


def test_shapes_and_classes(scene):
    assert scene.image.shape == (3, 256, 256) and scene.image.dtype == np.uint8
    assert scene.label.shape == (256, 256)
    assert set(np.unique(scene.label)) <= set(range(len(CLASS_NAMES)))
    # both zone kinds and both detail classes occur
    present = set(np.unique(generate_scene(512, seed=0).label))
    assert {synthetic.URBAN, synthetic.RURAL, synthetic.ROAD, synthetic.BUILDING} <= present


def test_lookalike_classes_share_one_texture():
    s = generate_scene(512, seed=0)
    park = s.image[:, s.label == synthetic.PARK].mean(1)
    meadow = s.image[:, s.label == synthetic.MEADOW].mean(1)
    urban = s.image[:, s.label == synthetic.URBAN].mean(1)
    assert np.abs(park - meadow).max() < 12  # same look (illumination aside)
    assert np.abs(park - urban).max() > 40  # zones look different


def test_detail_vanishes_in_the_global_view():
    # global logits of a 512 px scene seen at 128 px are 32 px wide: one cell per 16x16
    # pixels. Roads and buildings almost never fill half of such a cell.
    s = generate_scene(512, seed=0)
    for cls in (synthetic.ROAD, synthetic.BUILDING):
        share = (s.label == cls).reshape(32, 16, 32, 16).mean((1, 3))
        assert (share >= 0.5).sum() <= 2


def test_write_scene_georeferenced_pair_and_polygons(tmp_path, scene):
    import geopandas as gpd
    from rasterio.features import rasterize

    synthetic.write_scene(scene, tmp_path / "img.tif", tmp_path / "lab.tif",
                          tmp_path / "lab.gpkg", crs="EPSG:32633")
    with rasterio.open(tmp_path / "img.tif") as img, rasterio.open(tmp_path / "lab.tif") as lab:
        assert img.crs.to_epsg() == 32633 and img.count == 3
        assert lab.transform == img.transform
        np.testing.assert_array_equal(lab.read(1), scene.label)
        assert lab.colormap(1)[synthetic.ROAD][:3] == synthetic.CLASS_COLORS[synthetic.ROAD]
        transform = img.transform
    polygons = gpd.read_file(tmp_path / "lab.gpkg")
    ids = polygons[synthetic.LABEL_FIELD].map(CLASS_NAMES.index)
    burned = rasterize(zip(polygons.geometry, ids, strict=True), out_shape=(256, 256),
                       transform=transform)
    assert (burned == scene.label).mean() > 0.999


def test_write_custom_dataset(tmp_path):
    files = synthetic.write_custom_dataset(tmp_path, count=2, size=96, seed=1)
    assert [p.name for p in files.images] == ["scene_000.tif", "scene_001.tif"]
    with rasterio.open(files.images[0]) as a, rasterio.open(files.images[1]) as b:
        assert b.bounds.left > a.bounds.right  # tiles side by side, apart
    assert files.vector.exists() and files.classes.exists()
