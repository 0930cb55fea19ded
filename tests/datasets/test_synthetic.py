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


# Sparse building scenes: 1024 px is the size of the coarse-to-fine benchmark's rasters.
SPARSE_SIZE = 1024


@pytest.fixture(scope="module")
def sparse_scenes():
    return [synthetic.generate_sparse_scene(SPARSE_SIZE, seed) for seed in range(4)]


def test_sparse_same_seed_same_scene():
    scene = synthetic.generate_sparse_scene(256, seed=5)
    again = synthetic.generate_sparse_scene(256, seed=5)
    np.testing.assert_array_equal(scene.image, again.image)
    np.testing.assert_array_equal(scene.label, again.label)
    assert not np.array_equal(synthetic.generate_sparse_scene(256, seed=6).image, scene.image)


def test_sparse_scene_is_binary(sparse_scenes):
    scene = sparse_scenes[0]
    assert scene.image.shape == (3, SPARSE_SIZE, SPARSE_SIZE) and scene.image.dtype == np.uint8
    assert set(np.unique(scene.label)) == {synthetic.SPARSE_BACKGROUND, synthetic.SPARSE_BUILDING}
    assert scene.class_names == synthetic.SPARSE_CLASS_NAMES == ("background", "building")
    assert len(scene.class_colors) == 2


def test_sparse_building_fraction(sparse_scenes):
    fractions = [s.label.mean() for s in sparse_scenes]
    assert 0.05 <= np.mean(fractions) <= 0.10
    assert all(0.03 <= f <= 0.13 for f in fractions)
    # counts scale with the area: the 128 px training scenes of the benchmark hold the same
    # share of buildings on average, most of them none at all
    small = [synthetic.generate_sparse_scene(128, seed).label for seed in range(48)]
    assert 0.04 <= np.mean([s.mean() for s in small]) <= 0.11
    assert np.mean([s.max() == 0 for s in small]) > 0.5


def test_sparse_buildings_cluster_in_villages(sparse_scenes):
    empty = []
    for scene in sparse_scenes:
        tiles = scene.label.reshape(8, 128, 8, 128).max((1, 3))
        empty.append((tiles == 0).mean())
    assert np.mean(empty) >= 0.5  # most 128 px tiles hold no building
    assert min(empty) >= 0.35


def test_sparse_buildings_are_small_roofs(sparse_scenes):
    scene = sparse_scenes[0]
    roofs = scene.features[scene.features["class_id"] == synthetic.SPARSE_BUILDING]
    assert np.median(roofs.area) < 81  # one 6-9 px roof each, a few merged
    roof = scene.image[:, scene.label == synthetic.SPARSE_BUILDING].mean(1)
    look = synthetic.TEXTURES[synthetic.BUILDING].color
    assert np.abs(roof - look).max() < 20  # the existing building texture


def test_sparse_features_rasterize_to_label(tmp_path, sparse_scenes):
    import geopandas as gpd
    from affine import Affine
    from rasterio.features import rasterize

    scene = sparse_scenes[1]
    burned = rasterize(zip(scene.features.geometry, scene.features["class_id"], strict=True),
                       out_shape=scene.label.shape, transform=Affine.identity())
    np.testing.assert_array_equal(burned, scene.label)
    assert scene.features.geometry.is_valid.all()

    small = synthetic.generate_sparse_scene(256, seed=2)
    synthetic.write_scene(small, tmp_path / "img.tif", tmp_path / "lab.tif",
                          tmp_path / "lab.gpkg")
    with rasterio.open(tmp_path / "lab.tif") as lab:
        np.testing.assert_array_equal(lab.read(1), small.label)
        assert lab.descriptions[0] == "background,building"
        assert lab.colormap(1)[1][:3] == synthetic.SPARSE_CLASS_COLORS[1]
        transform = lab.transform
    polygons = gpd.read_file(tmp_path / "lab.gpkg")
    ids = polygons[synthetic.LABEL_FIELD].map(synthetic.SPARSE_CLASS_NAMES.index)
    burned = rasterize(zip(polygons.geometry, ids, strict=True), out_shape=(256, 256),
                       transform=transform)
    assert (burned == small.label).mean() > 0.999
