import pytest

from glnet_geo.checkpoint import load_checkpoint
from glnet_geo.errors import InputError
from glnet_geo.predict import PredictMode, PredictOptions, SceneSettings
from glnet_geo.predict.distributed import Cluster
from glnet_geo.predict.settings import DEFAULT_GLOBAL_VIEWS


def test_modes_parse_with_one_line_naming_the_choices():
    assert PredictMode.parse("coarse-to-fine") is PredictMode.COARSE_TO_FINE
    with pytest.raises(InputError, match="glnet, global, local, coarse-to-fine"):
        PredictMode.parse("fast")


def test_options_check_creation_options_once():
    assert PredictOptions(creation_options={"compress": "zstd"}).creation_options == {
        "COMPRESS": "zstd"}
    with pytest.raises(InputError, match="NOT_AN_OPTION"):
        PredictOptions(creation_options={"NOT_AN_OPTION": "1"})


def test_a_cluster_is_asked_for_by_workers_or_a_scheduler():
    assert Cluster.requested() is None
    assert Cluster.requested(workers=2).torch_threads == 1
    assert Cluster.requested(scheduler="tcp://h:8786", threads_per_worker=4).torch_threads == 4
    with pytest.raises(InputError, match="--threads-per-worker 3 applies to Dask workers"):
        Cluster.requested(threads_per_worker=3)


def test_the_old_module_names_still_import():
    from glnet_geo import predict
    from glnet_geo.distributed import predict_in_parts
    from glnet_geo.inference import SceneSettings, predict_raster, prepare_checkpoint
    from glnet_geo.predict import settings

    assert predict_raster is predict.predict_raster and SceneSettings is settings.SceneSettings
    assert prepare_checkpoint is settings.prepare_checkpoint
    assert predict_in_parts is predict.distributed.predict_in_parts


def test_global_mode_predicts_four_scenes_a_pass_unless_told(make_checkpoint):
    config = load_checkpoint(make_checkpoint()).config
    global_mode = SceneSettings.from_config(config, "global").on("cpu")
    assert global_mode.scenes_per_pass() == DEFAULT_GLOBAL_VIEWS == 4
    assert global_mode.scenes_per_pass(with_probabilities=True) == 1
    told = SceneSettings.from_config(config, "global", batch_size=2).on("cpu")
    assert told.scenes_per_pass() == 2
    glnet = SceneSettings.from_config(config).on("cpu")
    assert glnet.batch_size == 1 and glnet.scenes_per_pass() == 1
