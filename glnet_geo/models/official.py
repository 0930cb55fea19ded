"""Import the official GLNet checkpoints (VITA-Group/GLNet, PyTorch 0.4).

The official network (``fpn``, ResNet-50, 3 bands fed as ``ToTensor()``
values in [0, 1]) saves a plain ``state_dict`` with the keys
``resnet_global.*``, ``resnet_local.*``, ``fpn_global.*``, ``fpn_local.*``
and ``ensemble_conv.*`` (``module.``-prefixed when saved from
``DataParallel``). They map onto :class:`~glnet_geo.models.glnet.GLNet` as:

===================================  ==============================================
official                             glnet-geo
===================================  ==============================================
``resnet_global.X``                  ``global_branch.encoder.X``
``resnet_local.X``                   ``local_branch.encoder.X``
``fpn_global.X`` (incl. ``*_ext``)   ``global_branch.fpn.X``
``fpn_local.L`` (toplayer ...        ``local_branch.fpn.L_ext`` (the official local
smooth4_2)                           FPN only has the doubled layers)
``fpn_local.smooth``, ``.classify``  ``local_branch.fpn.smooth``, ``.classify``
``ensemble_conv``                    ``aggregation.conv``
stage-1 file: ``resnet_global``,     ``fixed_global_branch.encoder``,
``fpn_global`` (plain layers)        ``fixed_global_branch.fpn``
===================================  ==============================================

Our local FPN's plain layers (used by the LOCAL and AGGREGATE modes only) have
no official counterpart and keep their initial values. The official class
channels can be reordered to a preset's order (``class_order``), which
permutes the output channels of the three classifiers.

Which stage a file comes from is read from its weights by :func:`official_stage`. Reading
the files and writing a checkpoint from them is :mod:`glnet_geo.import_official`'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from glnet_geo.errors import CheckpointError
from glnet_geo.models.glnet import GLNet
from glnet_geo.models.stages import Stage

#: The official network's backbone and input.
OFFICIAL_BACKBONE = "resnet50"
OFFICIAL_IN_CHANNELS = 3


_CLASSIFIERS = ("global_branch.fpn.classify", "local_branch.fpn.classify", "aggregation.conv",
                "fixed_global_branch.fpn.classify")


def from_official(state_dict: Mapping[str, Tensor], num_classes: int,
                  global_fixed: Mapping[str, Tensor] | None = None,
                  class_order: Sequence[int] | None = None) -> GLNet:
    """Build a ResNet-50 GLNet holding the weights of an official checkpoint.

    Args:
        state_dict: The official ``state_dict`` (stage 1, 2 or 3).
        num_classes: Number of classes it predicts.
        global_fixed: For a G<->L (stage-3) ``state_dict``, the stage-1 one:
            its global keys fill the frozen copy of G.
        class_order: For each of our class ids, the official output channel
            that predicts it (default: the same order).

    Returns:
        The model, in eval mode.

    Raises:
        CheckpointError: A missing or unexpected key, a shape that does not
            fit ``num_classes``, or stages that do not go together
            (:func:`check_official_stages`).

    """
    model = GLNet(num_classes, OFFICIAL_BACKBONE, OFFICIAL_IN_CHANNELS,
                  fixed_global=global_fixed is not None)
    target = model.state_dict()
    names = official_names(model)
    _copy(_strip_module(state_dict), names, set(names), target, "the official state_dict")
    if global_fixed is not None:
        fixed = {official_global_name(key): key for key in target
                 if key.startswith("fixed_global_branch.")}
        _copy(_strip_module(global_fixed), fixed, set(names), target,
              "the stage-1 (global_fixed) state_dict")
    check_official_stages("the official state_dict", state_dict,
                          None if global_fixed is None else "the stage-1 state_dict",
                          global_fixed)
    if class_order is not None:
        _reorder_classes(target, class_order, num_classes)
    model.load_state_dict(target)
    return model.eval()


def official_names(model: GLNet) -> dict[str, str]:
    """Official key -> our key, for every entry of an official ``state_dict``."""
    names = {}
    for key in model.state_dict():
        official = _official_name(key)
        if official is not None:
            names[official] = key
    return names


def official_global_name(key: str) -> str:
    """Return the official key of a weight of our frozen G copy (from the stage-1 file)."""
    _, part, rest = key.split(".", 2)
    return f"{'resnet' if part == 'encoder' else 'fpn'}_global.{rest}"


def official_stage(state_dict: Mapping[str, Tensor]) -> Stage:
    """Decide from its weights which training stage an official file comes from.

    The official code initialises every FPN bias at zero and each stage
    trains only some layers, so the biases tell the stages apart:

    - the global FPN's doubled (``*_ext``) layers are trained only in stage 3:
      any non-zero bias there -> ``LOCAL_TO_GLOBAL`` (a ``local2global`` file);
    - otherwise a local FPN left at its initial zero biases -> ``GLOBAL``
      (stage 1, a ``global`` file);
    - otherwise ``GLOBAL_TO_LOCAL`` (stage 2, a ``global2local`` file).
    """
    state = _strip_module(state_dict)

    def trained(prefix: str, ext_only: bool = False) -> bool:
        biases = [v for k, v in state.items() if k.startswith(prefix) and k.endswith(".bias")
                  and (not ext_only or k.rsplit(".", 2)[-2].endswith("_ext"))]
        return any(bool(b.any()) for b in biases)

    if trained("fpn_global.", ext_only=True):
        return Stage.LOCAL_TO_GLOBAL
    if not trained("fpn_local."):
        return Stage.GLOBAL
    return Stage.GLOBAL_TO_LOCAL


def check_official_stages(official: str | os.PathLike, state_dict: Mapping[str, Tensor],
                          global_fixed: str | os.PathLike | None = None,
                          fixed_state: Mapping[str, Tensor] | None = None) -> Stage:
    """Return the stage of an official file, refusing a pairing that would mislead.

    A stage-3 (``local2global``) file needs the stage-1 file for the frozen
    copy of G that feeds L; without it the import would combine a stage-3
    encoder with stale decoder layers. ``--global-fixed`` goes only with a
    stage-3 file, and must not itself be a stage-3 file.

    Raises:
        CheckpointError: One of these pairings, naming the file and the fix.

    """
    stage = official_stage(state_dict)
    if global_fixed is None and stage is Stage.LOCAL_TO_GLOBAL:
        raise CheckpointError(
            f"{official} is a stage-3 (local2global) file (its fpn_global *_ext layers are "
            "trained); import it with the stage-1 file: --global-fixed "
            "fpn_deepglobe_global.pth")
    if global_fixed is not None:
        if stage is not Stage.LOCAL_TO_GLOBAL:
            raise CheckpointError(
                f"--global-fixed goes with a stage-3 (local2global) file, but {official} is a "
                f"stage-{_STAGE_NUMBER[stage]} ({_OFFICIAL_NAME[stage]}) file; drop "
                "--global-fixed")
        if fixed_state is not None and official_stage(fixed_state) is Stage.LOCAL_TO_GLOBAL:
            raise CheckpointError(
                f"--global-fixed {global_fixed} is a stage-3 (local2global) file; give the "
                "stage-1 file, e.g. --global-fixed fpn_deepglobe_global.pth")
    return stage


#: The stage numbers and file-name parts of the official code.
_STAGE_NUMBER = {Stage.GLOBAL: 1, Stage.GLOBAL_TO_LOCAL: 2, Stage.LOCAL_TO_GLOBAL: 3}
_OFFICIAL_NAME = {Stage.GLOBAL: "global", Stage.GLOBAL_TO_LOCAL: "global2local",
                  Stage.LOCAL_TO_GLOBAL: "local2global"}


def _official_name(key: str) -> str | None:
    branch, _, rest = key.partition(".")
    if branch == "aggregation":
        return "ensemble_conv." + rest.removeprefix("conv.")
    if branch not in ("global_branch", "local_branch"):
        return None
    side = branch.removesuffix("_branch")
    part, _, rest = rest.partition(".")
    if part == "encoder":
        return f"resnet_{side}.{rest}"
    if side == "global":
        return f"fpn_global.{rest}"
    layer, _, param = rest.partition(".")
    if layer in ("smooth", "classify"):
        return f"fpn_local.{rest}"
    if layer.endswith("_ext"):
        return f"fpn_local.{layer.removesuffix('_ext')}.{param}"
    return None  # our plain local layers have no official counterpart


def _strip_module(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k.removeprefix("module."): v for k, v in state.items()}


def _copy(state: dict[str, Tensor], names: dict[str, str], allowed: set[str],
          target: dict[str, Tensor], what: str) -> None:
    """Copy ``state[official]`` into ``target[ours]`` for ``names``, checking keys and shapes.

    BatchNorm's ``num_batches_tracked`` (absent from PyTorch 0.4.0 files) is optional.
    """
    unexpected = sorted(set(state) - allowed)
    if unexpected:
        raise CheckpointError(f"{what} has unexpected key {unexpected[0]!r} "
                              f"({len(unexpected)} in all); it is not an official GLNet "
                              "ResNet-50 checkpoint")
    missing = sorted(k for k in names if k not in state
                     and not k.endswith("num_batches_tracked"))
    if missing:
        raise CheckpointError(f"{what} lacks key {missing[0]!r} ({len(missing)} missing); "
                              "the file is incomplete or not an official GLNet checkpoint")
    for official, ours in names.items():
        if official not in state:
            continue
        value = state[official]
        if value.shape != target[ours].shape:
            hint = ""
            if ours.rsplit(".", 1)[0] in _CLASSIFIERS:
                hint = (f": the file predicts {value.shape[0]} classes, the preset has "
                        f"{target[ours].shape[0]}")
            raise CheckpointError(f"{what}: {official} has shape {tuple(value.shape)}, expected "
                                  f"{tuple(target[ours].shape)}{hint}")
        target[ours] = value.to(target[ours].dtype)


def _reorder_classes(target: dict[str, Tensor], order: Sequence[int], num_classes: int) -> None:
    if sorted(order) != list(range(num_classes)):
        raise CheckpointError(f"class_order {list(order)} is not a permutation of "
                              f"0..{num_classes - 1}")
    index = torch.as_tensor(list(order))
    for prefix in _CLASSIFIERS:
        for param in ("weight", "bias"):
            key = f"{prefix}.{param}"
            if key in target:
                target[key] = target[key][index].clone()
