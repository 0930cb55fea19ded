from pathlib import Path

import pytest

from glnet_geo.errors import InputError, OutputError, OutputExistsError
from glnet_geo.predict import OutputPlan, PredictedRaster, distributed, driver, predict_raster
from glnet_geo.predict.outputs import directory_plans


def test_a_plan_names_its_outputs_in_order(tmp_path):
    plan = OutputPlan.of(tmp_path / "c.tif", polygons=str(tmp_path / "c.gpkg"),
                         stac=tmp_path / "c.json")
    assert plan.files == [tmp_path / "c.tif", tmp_path / "c.gpkg", tmp_path / "c.json"]
    assert plan.polygon_format.value == "gpkg"
    assert OutputPlan(tmp_path / "c.tif").polygon_format is None


@pytest.mark.parametrize(("plan", "error", "words"), [
    (dict(polygons="c.xyz"), InputError, [".xyz", ".gpkg"]),
    (dict(probabilities="p.jpg"), OutputError, ["p.tif"]),
    (dict(preview="v.jpg"), OutputError, ["v.png"]),
    (dict(stac="c.tif"), OutputError, ["also another output"]),
    (dict(probabilities="c.tif"), OutputError, ["share a path"]),
])
def test_a_bad_plan_is_refused_and_leaves_nothing(make_raster, tmp_path, plan, error, words):
    raster = make_raster()
    paths = {k: tmp_path / v for k, v in plan.items()}
    with pytest.raises(error) as caught:
        OutputPlan.of(tmp_path / "c.tif", **paths).check(str(raster))
    assert all(w in str(caught.value) for w in words), caught.value
    assert sorted(p.name for p in tmp_path.iterdir()) == [raster.name]


def test_an_existing_output_is_kept_unless_overwrite_or_resume(make_raster, tmp_path):
    raster, existing = make_raster(), tmp_path / "c.json"
    existing.write_text("{}")
    plan = OutputPlan.of(tmp_path / "c.tif", stac=existing)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        plan.check(str(raster))
    plan.check(str(raster), resume=True)  # a resumed run rewrites its STAC Item
    plan.check(str(raster), overwrite=True)


def test_the_output_cannot_be_the_input(make_raster):
    raster = make_raster()
    with pytest.raises(OutputError, match="is the input raster"):
        OutputPlan(raster).check(str(raster), overwrite=True)


def test_directory_plans_name_one_file_per_input(tmp_path):
    plans = directory_plans(["a/one.tif", "b/two.vrt"], tmp_path / "out",
                            polygons=tmp_path / "poly", polygon_suffix=".fgb")
    assert [p.classes for p in plans] == [tmp_path / "out" / "one.tif",
                                         tmp_path / "out" / "two.tif"]
    assert [p.polygons.name for p in plans] == ["one.fgb", "two.fgb"]
    assert plans[0].probabilities is None and (tmp_path / "poly").is_dir()
    with pytest.raises(InputError, match="rename one"):
        directory_plans(["a/one.tif", "b/one.tif"], tmp_path / "out")


@pytest.mark.parametrize("options", [{}, {"resume": True}])
def test_an_unknown_polygon_format_fails_before_the_model_loads(
        make_checkpoint, make_raster, tmp_path, monkeypatch, options):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr(driver, "prepare_checkpoint", refuse)
    monkeypatch.setattr(distributed, "prepare_checkpoint", refuse)
    raster = make_raster()
    with pytest.raises(InputError, match=r"\.xyz"):
        predict_raster(make_checkpoint(), raster, tmp_path / "c.tif",
                       polygons=tmp_path / "c.xyz", progress=False, **options)
    assert sorted(p.name for p in tmp_path.iterdir()) == [Path(raster).name]


def test_a_result_lists_the_files_written(tmp_path):
    result = PredictedRaster("in.tif", tmp_path / "c.tif", polygons=tmp_path / "c.gpkg",
                             scenes=3)
    assert result.files == [tmp_path / "c.tif", tmp_path / "c.gpkg"]
