"""Predicting class rasters of any size with GLNet, from disk to disk.

The face of prediction; each concept lives in the module named after it:

- :mod:`~glnet_geo.predict.settings`: modes, devices, precision, sub-batches,
  scene sizes (:class:`SceneSettings`, :class:`PredictOptions`) and the
  checkpoint prepared for them;
- :mod:`~glnet_geo.predict.blending`: one scene through GLNet (global view,
  patches, blended probabilities, the core's classes);
- :mod:`~glnet_geo.predict.outputs`: every output of a run, planned and
  checked before any model runs (:class:`OutputPlan`), then written;
- :mod:`~glnet_geo.predict.driver`: the loop over inputs and scenes in this
  process (:func:`predict_raster`, :func:`predict_rasters`);
- :mod:`~glnet_geo.predict.stac`: the STAC Item that describes a run's outputs;
- :mod:`~glnet_geo.predict.distributed`: scenes as tasks, on Dask or resumable.

Imports go one way: settings, blending, outputs, stac, distributed, driver.
"""

from glnet_geo.predict.driver import predict_raster, predict_rasters
from glnet_geo.predict.outputs import OutputPlan, PredictedRaster
from glnet_geo.predict.settings import PredictMode, PredictOptions, SceneSettings

__all__ = ["OutputPlan", "PredictMode", "PredictOptions", "PredictedRaster", "SceneSettings",
           "predict_raster", "predict_rasters"]
