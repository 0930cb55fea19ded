import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from glnet_geo.classes import NO_CLASS
from glnet_geo.datasets import synthetic
from glnet_geo.datasets.custom import (
    ClassTable,
    CustomDataset,
    CustomScenes,
    expand_paths,
    read_class_file,
)
from glnet_geo.errors import InputError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return synthetic.write_custom_dataset(tmp_path_factory.mktemp("custom"), count=2, size=96,
                                          seed=5)


def _scored(dataset, size):
    """Every scored (pixel label) of a dataset's grid scenes, per tile."""
    return [label for _, label in CustomScenes(dataset, dataset.grid_scenes(size))]


def test_raster_labels_read_on_the_image_grid(files):
    dataset = CustomDataset([str(files.images[0].parent / "*.tif")], [files.labels[0].parent],
                            classes=files.classes)
    assert dataset.classes.names == list(synthetic.CLASS_NAMES)
    scenes = dataset.grid_scenes(64)
    assert len(scenes) == 2 * 4  # a 96 px tile takes 2 x 2 scenes of 64 px
    labels = _scored(dataset, 64)
    # every labelled pixel is scored exactly once: the tiles' label counts add up
    counts = sum(np.bincount(lab[lab != NO_CLASS].ravel(), minlength=6) for lab in labels)
    expected = sum(np.bincount(rasterio.open(p).read(1).ravel(), minlength=6)
                   for p in files.labels)
    np.testing.assert_array_equal(counts, expected)


def test_vector_labels_agree_with_raster_labels(files):
    raster = CustomDataset(files.images, files.labels, classes=files.classes)
    vector = CustomDataset(files.images, [files.vector], label_field="class",
                           classes=files.classes)
    for a, b in zip(_scored(raster, 96), _scored(vector, 96), strict=True):
        assert (a == b).mean() > 0.99


def test_classes_from_the_vector_attribute(files):
    dataset = CustomDataset(files.images, [files.vector], label_field="class")
    assert dataset.classes.names[0] == "background"
    assert set(dataset.classes.names[1:]) <= set(synthetic.CLASS_NAMES)


def test_labels_in_another_crs_are_reprojected(files, tmp_path):
    src_path = files.labels[0]
    warped = tmp_path / "labels_4326.tif"
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds)
        profile = src.profile | {"crs": "EPSG:4326", "transform": transform, "width": width,
                                 "height": height}
        with rasterio.open(warped, "w", **profile) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1),
                      resampling=Resampling.nearest)
        truth = src.read(1)
    dataset = CustomDataset([files.images[0]], [warped], classes=files.classes)
    with rasterio.open(files.images[0]) as img:
        left, bottom, right, top = img.bounds
    _, label, _ = dataset.read((slice(left, right), slice(bottom, top)))
    assert label.shape == truth.shape
    inside = label != NO_CLASS
    assert inside.mean() > 0.9
    assert (label[inside] == truth[inside]).mean() > 0.9


def test_vector_missing_field_is_one_clear_error(files):
    with pytest.raises(InputError, match=r"no attribute 'landuse' \(attributes: .*class"):
        CustomDataset(files.images, [files.vector], label_field="landuse")


def test_labels_that_do_not_overlap(files, tmp_path):
    far = gpd.read_file(files.vector)
    far["geometry"] = far.translate(xoff=1e5)
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputError, match=r"do not overlap the images.* in EPSG:\d+; give"):
        CustomDataset(files.images, [tmp_path / "far.gpkg"], label_field="class")


def test_invalid_label_polygons_are_one_warning_line(files, tmp_path, caplog):
    import shapely

    labels = gpd.read_file(files.vector)
    x0, y0, x1, y1 = labels.total_bounds
    labels.loc[0, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    labels.to_file(tmp_path / "bowtie.gpkg")
    CustomDataset(files.images, [tmp_path / "bowtie.gpkg"], label_field="class")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert f"1 of {len(labels)} polygons are invalid (feature 0: Self-intersection" in warnings[0]
    assert "ogr2ogr -makevalid" in warnings[0]


def test_label_values_beyond_the_classes(files, tmp_path):
    (tmp_path / "two.json").write_text(json.dumps({"classes": [{"name": "a"}, {"name": "b"}]}))
    with pytest.raises(InputError, match=r"holds class \d+ but the classes of .*two.json"):
        CustomDataset(files.images, files.labels, classes=tmp_path / "two.json")
    with pytest.raises(InputError, match="not among"):
        CustomDataset(files.images, [files.vector], label_field="class",
                      classes=ClassTable(["urban", "rural"]))


def test_bad_paths_and_class_files(tmp_path, files):
    with pytest.raises(InputError, match="matches no file"):
        CustomDataset([tmp_path / "none" / "*.tif"], files.labels)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_class_file(tmp_path / "bad.json")
    with pytest.raises(InputError, match="--label-field"):
        CustomDataset(files.images, [files.vector])


def test_random_sampler_draws_scenes_inside_the_tiles(files):
    dataset = CustomDataset(files.images, files.labels, classes=files.classes)
    queries = list(dataset.random_sampler(64, length=5))
    assert len(queries) == 5
    for query in queries:
        image, label, valid = dataset.read(query)
        assert image.shape == (3, 64, 64) and (label != NO_CLASS).all() and valid.all()
    with pytest.raises(InputError, match="larger than every image tile"):
        dataset.random_sampler(200)


def test_paths_expand_as_predict_inputs_do(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/one.tif", "a/two.TIFF", "a/three.vrt", "a/notes.txt", "a/deep/four.tif"):
        (tmp_path / name).write_bytes(b"")
    folder = [Path(p).name for p in expand_paths([tmp_path / "a"], "--images")]
    assert folder == ["one.tif", "three.vrt", "two.TIFF"]
    recursive = expand_paths([str(tmp_path / "a" / "**" / "*.tif")], "--images")
    assert [Path(p).name for p in recursive] == ["four.tif", "one.tif"]
    with pytest.raises(InputError, match=r"--labels .*missing.tif matches no file"):
        expand_paths([tmp_path / "missing.tif"], "--labels")
