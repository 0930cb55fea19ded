"""Deprecated: moved to :mod:`glnet_geo.predict.distributed`; this re-export goes in 0.3."""

from glnet_geo.predict.distributed import (
    Cluster,
    SceneFailure,
    SceneTask,
    checkpoint_identity,
    checkpoint_loads,
    dask_client,
    dask_log_level,
    dask_logs,
    predict_in_parts,
    run_scene_task,
    run_tasks,
    worker_checkpoint,
)

__all__ = ["Cluster", "SceneFailure", "SceneTask", "checkpoint_identity", "checkpoint_loads",
           "dask_client", "dask_log_level", "dask_logs", "predict_in_parts", "run_scene_task",
           "run_tasks", "worker_checkpoint"]
