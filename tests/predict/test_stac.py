import json

import pystac
import pytest
import rasterio
import shapely.geometry

from glnet_geo.checkpoint import ModelConfig, read_checkpoint
from glnet_geo.errors import OutputError, OutputExistsError
from glnet_geo.predict import predict_raster, predict_rasters
from glnet_geo.predict.stac import _machine_name

EXTENSIONS = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
}


def validate_core(item: pystac.Item) -> None:
    """Validate the Item against the core STAC Item schema, offline.

    pystac ships the core schemas; the extensions' schemas live on the web, which the tests
    do not reach, so their fields are checked one by one below.
    """
    core = item.clone()
    core.stac_extensions = []
    pystac.validation.validate_dict(core.to_dict(include_self_link=False))


def test_item_describes_the_prediction(make_checkpoint, make_raster, tmp_path):
    raster = make_raster(height=90, width=110)
    out = tmp_path / "out"
    out.mkdir()
    checkpoint = make_checkpoint()
    config = ModelConfig.from_dict(read_checkpoint(checkpoint)["config"])
    result = predict_raster(checkpoint, raster, out / "classes.tif",
                            probabilities=out / "probs.tif", polygons=out / "classes.gpkg",
                            preview=out / "preview.png", stac=out / "classes.json",
                            mode="global", device="cpu", progress=False)
    assert result.stac == out / "classes.json"
    document = json.loads(result.stac.read_text())
    assert set(document["stac_extensions"]) == EXTENSIONS
    assert document["type"] == "Feature" and document["stac_version"] == pystac.get_stac_version()
    assert not any(link["rel"] == "self" for link in document["links"])
    item = pystac.Item.from_dict(document)
    validate_core(item)

    with rasterio.open(result.classes) as src:
        footprint = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        shape, transform, native = [src.height, src.width], list(src.transform)[:6], src.bounds
    assert item.bbox == pytest.approx(footprint, abs=1e-6)
    lon, lat = shapely.geometry.shape(item.geometry).centroid.coords[0]
    assert -180 <= lon <= 180 and -90 <= lat <= 90
    assert item.properties["proj:code"] == "EPSG:32631"
    assert item.properties["proj:shape"] == shape
    assert item.properties["proj:transform"] == pytest.approx(transform)
    assert item.properties["proj:bbox"] == pytest.approx(list(native))

    assert {k: a.href for k, a in item.assets.items()} == {
        "classes": "./classes.tif", "probabilities": "./probs.tif",
        "polygons": "./classes.gpkg", "preview": "./preview.png",
        "classes_style": "./classes.qml"}
    assert item.assets["preview"].roles == ["overview"]
    assert item.assets["classes"].media_type.startswith("image/tiff; application=geotiff")
    classes = item.assets["classes"].extra_fields["classification:classes"]
    assert classes[:-1] == [
        {"value": i, "name": n, "title": n, "color_hint": "{:02X}{:02X}{:02X}".format(*c)}
        for i, (n, c) in enumerate(zip(config.class_names, config.class_colors, strict=True))]
    assert classes[-1] == {"value": 255, "name": "nodata", "title": "no data", "nodata": True}
    bands = item.assets["probabilities"].extra_fields["raster:bands"]
    assert [b["scale"] for b in bands] == [1 / 255] * 3

    properties = item.properties
    assert properties["glnet:backbone"] == "resnet18"
    assert properties["glnet:stage"] == "global-to-local"
    assert properties["glnet:checkpoint"].endswith(".pt")
    assert properties["glnet:precision"] == result.precision
    assert properties["glnet:predict_mode"] == "global"
    assert properties["glnet:checkpoint_version"]


def test_several_inputs_give_one_item_each_and_existing_items_are_kept(
        make_checkpoint, make_raster, tmp_path):
    rasters = [make_raster("a.tif", 40, 50, seed=1), make_raster("b.tif", 50, 40, seed=2)]
    results = predict_rasters(make_checkpoint(), rasters, tmp_path / "classes",
                              stac=tmp_path / "items", mode="global", progress=False)
    assert [r.stac.name for r in results] == ["a.json", "b.json"]
    item = pystac.Item.from_file(results[0].stac)
    assert item.assets["classes"].get_absolute_href() == str(tmp_path / "classes" / "a.tif")
    with pytest.raises(OutputExistsError, match=r"a.json"):
        predict_raster(make_checkpoint(), rasters[0], tmp_path / "other.tif",
                       stac=results[0].stac, mode="global", progress=False)
    assert not (tmp_path / "other.tif").exists()


def test_the_item_cannot_take_another_output_s_path(make_checkpoint, make_raster, tmp_path):
    with pytest.raises(OutputError, match=r"--stac .*classes.tif is also another output"):
        predict_raster(make_checkpoint(), make_raster(height=40, width=40),
                       tmp_path / "classes.tif", stac=tmp_path / "classes.tif", progress=False)
    assert not (tmp_path / "classes.tif").exists()


def test_machine_names():
    assert _machine_name("urban land") == "urban_land"
    assert _machine_name("forêt/bois") == "for_t_bois"
    assert _machine_name("***") == "class"
