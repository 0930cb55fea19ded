"""``glnet-geo import-official``: the official GLNet ``.pth`` files as glnet-geo checkpoints.

Reads the official files without executing pickled code (:func:`load_official`),
maps their weights onto :class:`~glnet_geo.models.GLNet`
(:mod:`glnet_geo.models.official`, which also recognises each file's stage) and
writes a self-describing checkpoint of the official setting
(:func:`import_official`).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import Tensor

from glnet_geo.checkpoint import ModelConfig, save_checkpoint, unpickling_refusal
from glnet_geo.classes import class_preset
from glnet_geo.errors import CheckpointError, OutputExistsError
from glnet_geo.imagery import DEEPGLOBE_IMAGERY, INRIA_IMAGERY
from glnet_geo.io.reader import Normalization
from glnet_geo.models.official import OFFICIAL_BACKBONE, check_official_stages, from_official

#: Scene side of each dataset's images in the official code (one image is one scene).
SCENE_SIZES = {"deepglobe": 2448, "inria": 5000}
#: The imagery each official file was trained on.
OFFICIAL_IMAGERY = {"deepglobe": DEEPGLOBE_IMAGERY, "inria": INRIA_IMAGERY}


def load_official(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read an official ``.pth`` without executing pickled code.

    Raises:
        CheckpointError: Missing, unsafe or not a ``state_dict`` of tensors.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"official checkpoint {path} does not exist; give the path of a "
                              "GLNet .pth such as fpn_deepglobe_global2local.pth")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path} is not a plain state_dict (refused to unpickle: "
                              f"{unpickling_refusal(exc)}); give the official GLNet .pth"
                              ) from None
    except Exception as exc:
        raise CheckpointError(f"{path} is not a torch file ({type(exc).__name__}: {exc}); "
                              "give the official GLNet .pth") from None
    if isinstance(state, dict) and state.get("format") == "glnet-geo":
        raise CheckpointError(f"{path} is already a glnet-geo checkpoint; use it directly")
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state_dict of tensors; give the official "
                              "GLNet .pth")
    return dict(state)


def import_official(official: str | os.PathLike, output: str | os.PathLike,
                    classes: str = "deepglobe", global_fixed: str | os.PathLike | None = None,
                    overwrite: bool = False) -> Path:
    """Convert official GLNet weights into a glnet-geo checkpoint.

    The checkpoint describes the official setting: bands 1-3, inputs scaled
    to [0, 1] (``ToTensor()``: scale 255, mean 0, std 1), 508 px global view
    and patches, 50 px minimum overlap, the dataset's scene size, the
    training imagery (8-bit, DeepGlobe 0.5 m, Inria 0.3 m) and the
    stage from :func:`official_stage` (checked by :func:`check_official_stages`).

    Args:
        official: The official ``.pth`` (stage 2, or stage 3 with ``global_fixed``).
        output: Checkpoint to write.
        classes: Class preset, ``deepglobe`` or ``inria``.
        global_fixed: The stage-1 ``.pth`` that goes with a stage-3 file.
        overwrite: Replace ``output`` if it exists.

    Returns:
        The path written.

    """
    preset = class_preset(classes)
    if Path(output).exists() and not overwrite:
        raise OutputExistsError(f"{output} already exists; pass --overwrite to replace it")
    state = load_official(official)
    fixed = load_official(global_fixed) if global_fixed is not None else None
    stage = check_official_stages(official, state, global_fixed, fixed)
    model = from_official(state, len(preset.names), fixed, class_order=preset.official_order)
    config = ModelConfig(
        class_names=list(preset.names),
        class_colors=list(preset.colors),
        ignore_index=preset.ignore_index,
        backbone=OFFICIAL_BACKBONE,
        bands=[1, 2, 3],
        normalization=Normalization(scale=255.0, mean=[0.0] * 3, std=[1.0] * 3),
        global_size=508,
        patch_size=508,
        min_overlap=50,
        scene_size=SCENE_SIZES[classes],
        stage=stage,
        imagery=OFFICIAL_IMAGERY[classes],
    )
    return save_checkpoint(output, model, config, overwrite=overwrite)
