"""Deprecated: prediction moved to :mod:`glnet_geo.predict`; this re-export goes in 0.3."""

from glnet_geo.predict.argmax import class_ids
from glnet_geo.predict.blending import (
    PatchReader,
    ScenePrediction,
    blend_scene,
    blend_weights,
    global_view,
    patches_to_refine,
    predict_scene,
    scene_probabilities,
)
from glnet_geo.predict.driver import cached_band_width, predict_raster, predict_rasters
from glnet_geo.predict.outputs import (
    Core,
    OutputPlan,
    PredictedRaster,
    output_paths,
    output_tags,
    write_outputs,
)
from glnet_geo.predict.settings import (
    CHANNELS_LAST,
    DEFAULT_BATCH_SIZES,
    GDAL_CACHE_MB,
    GUIDED_MODES,
    PredictMode,
    PredictOptions,
    SceneSettings,
    check_scene_size,
    default_batch_size,
    prepare_checkpoint,
    resolve_device,
)

__all__ = ["CHANNELS_LAST", "DEFAULT_BATCH_SIZES", "GDAL_CACHE_MB", "GUIDED_MODES", "Core",
           "OutputPlan", "PatchReader", "PredictMode", "PredictOptions", "PredictedRaster",
           "ScenePrediction", "SceneSettings", "blend_scene", "blend_weights",
           "cached_band_width", "check_scene_size", "class_ids", "default_batch_size",
           "global_view", "output_paths", "output_tags", "patches_to_refine", "predict_raster",
           "predict_rasters", "predict_scene", "prepare_checkpoint", "resolve_device",
           "scene_probabilities", "write_outputs"]
