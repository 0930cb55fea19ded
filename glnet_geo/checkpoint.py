"""The self-describing checkpoint: weights plus everything predict needs.

A checkpoint is one file written by :func:`torch.save` holding only tensors,
strings, numbers, lists and dicts, so :func:`load_checkpoint` reads it with
``torch.load(weights_only=True)`` and never executes pickled code::

    {"format": "glnet-geo", "format_version": 1,
     "config": ModelConfig.to_dict(), "state_dict": {...}}
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import glnet_geo
from glnet_geo.classes import DEFAULT_COLORS
from glnet_geo.errors import CheckpointError, OutputExistsError
from glnet_geo.imagery import ImageryProfile
from glnet_geo.io.reader import Normalization
from glnet_geo.models.glnet import GLNet
from glnet_geo.models.stages import Stage

FORMAT = "glnet-geo"
FORMAT_VERSION = 1

@dataclass
class ModelConfig:
    """Everything about a trained GLNet that is not a weight.

    Attributes:
        class_names: One name per class id (0..K-1).
        class_colors: One RGB triple per class, used for the output palette.
        ignore_index: Class id ignored in the loss and metrics, if any.
        backbone: Encoder name (``resnet18``, ``resnet34``, ``resnet50``).
        bands: 1-based band indexes read from the input raster, in order.
        normalization: How raw pixel values become network inputs.
        global_size: Side in pixels of the downsampled global view.
        patch_size: Side in pixels of the full-resolution local patches.
        min_overlap: Minimum overlap in pixels between neighbouring patches.
        scene_size: Side in pixels of the scene GLNet looks at as a whole.
        stage: The training stage these weights reached.
        coarse_to_fine: The local branch was trained on coarse-to-fine crops
            (:mod:`glnet_geo.coarse_to_fine`; class 0 is the background), so
            ``--mode glnet`` predicts coarse-to-fine.
        imagery: The training imagery's dtype, value range and pixel size,
            which predict compares its inputs with (None: unknown, e.g. a
            checkpoint written before glnet-geo recorded it).
        version: The glnet-geo version that wrote the checkpoint.

    """

    class_names: list[str]
    class_colors: list[tuple[int, int, int]] = field(default_factory=list)
    ignore_index: int | None = None
    backbone: str = "resnet50"
    bands: list[int] = field(default_factory=lambda: [1, 2, 3])
    normalization: Normalization = field(default_factory=Normalization)
    global_size: int = 508
    patch_size: int = 508
    min_overlap: int = 50
    scene_size: int = 2448
    stage: Stage = Stage.GLOBAL
    coarse_to_fine: bool = False
    imagery: ImageryProfile | None = None
    version: str = glnet_geo.__version__

    def __post_init__(self) -> None:
        self.stage = Stage(self.stage)
        if isinstance(self.normalization, dict):
            self.normalization = Normalization(**self.normalization)
        if isinstance(self.imagery, dict):
            self.imagery = ImageryProfile(**self.imagery)
        if not self.class_colors:
            self.class_colors = [DEFAULT_COLORS[i % len(DEFAULT_COLORS)]
                                 for i in range(self.num_classes)]
        self.class_colors = [tuple(int(v) for v in c) for c in self.class_colors]
        if len(self.class_colors) != self.num_classes:
            raise CheckpointError(
                f"class_colors has {len(self.class_colors)} entries for {self.num_classes} "
                "classes; give one RGB triple per class")
        n = self.in_channels
        if len(self.normalization.mean) != n or len(self.normalization.std) != n:
            raise CheckpointError(
                f"normalization mean/std have {len(self.normalization.mean)}/"
                f"{len(self.normalization.std)} values for {n} bands; give one per band")

    @property
    def num_classes(self) -> int:
        """Number of classes the model predicts."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        """Number of input bands."""
        return len(self.bands)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form stored in the checkpoint (no custom classes)."""
        data = dataclasses.asdict(self)
        data["stage"] = self.stage.value
        data["class_colors"] = [list(c) for c in self.class_colors]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a clear error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CheckpointError(
                f"checkpoint config has unknown keys {unknown}; it was written by a newer "
                "glnet-geo, upgrade the package")
        return cls(**data)

    def build_model(self) -> GLNet:
        """Build a GLNet with this configuration's architecture (random weights)."""
        return GLNet(
            num_classes=self.num_classes,
            backbone=self.backbone,
            in_channels=self.in_channels,
            fixed_global=self.stage is Stage.LOCAL_TO_GLOBAL,
        )


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode), its configuration and its file.

    Attributes:
        model: The network, in eval mode.
        config: Its configuration.
        path: The file it was loaded from (None when built in memory).

    """

    model: GLNet
    config: ModelConfig
    path: Path | None = None


def save_checkpoint(path: str | os.PathLike, model: GLNet, config: ModelConfig,
                    overwrite: bool = False, run: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and ``config`` to one file, atomically.

    Args:
        path: Destination file.
        model: The network whose ``state_dict`` is saved.
        config: Its configuration.
        overwrite: Replace an existing file.
        run: The training run's configuration (plain data, see
            :mod:`glnet_geo.training.run_config`), stored as the payload's
            ``run`` entry.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.

    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass overwrite=True (--overwrite)")
    config.version = glnet_geo.__version__
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if run is not None:
        payload["run"] = run
    path.parent.mkdir(parents=True, exist_ok=True)
    from glnet_geo.io.staging import Staging
    from glnet_geo.io.writer import publish_file, writing

    with Staging(path) as staging, writing(path):  # a stop or a full disk leaves nothing
        tmp = staging.path(".partial")
        torch.save(payload, tmp)
        publish_file(tmp, path, overwrite)
    return path


def read_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint file's raw payload safely, checking its format.

    Args:
        path: The file.
        mmap: Map the tensors from the file instead of reading them into
            memory (pages are read when first used, and copied only if
            written to).

    Raises:
        CheckpointError: The file is missing, unsafe, not a glnet-geo
            checkpoint, or of another format version.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the path of a .pt file "
                              "written by 'glnet-geo train' or 'glnet-geo import-official'")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a checkpoint (not a torch zip file); give a .pt "
                              "file written by glnet-geo")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} is not a safe glnet-geo checkpoint (refused to unpickle: "
            f"{unpickling_refusal(exc)}); re-export it with 'glnet-geo import-official' or "
            "'glnet-geo train'") from None
    except Exception as exc:  # corrupt zip, truncated file, not a torch file at all
        raise CheckpointError(f"{path} is not a checkpoint ({type(exc).__name__}: {exc}); "
                              "give a .pt file written by glnet-geo") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a glnet-geo checkpoint (no 'format: {FORMAT}' header); an official "
            "GLNet .pth must first go through 'glnet-geo import-official'")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}, this glnet-geo reads version "
            f"{FORMAT_VERSION}; use the glnet-geo version that wrote it "
            f"({payload.get('config', {}).get('version', 'unknown')})")
    return payload


def unpickling_refusal(exc: pickle.UnpicklingError) -> str:
    """Say in a few words why ``torch.load(weights_only=True)`` refused a file."""
    match = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    if match:
        return f"it would call {match.group(1)}"
    return "it holds something other than tensors and plain data"


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint without executing pickled code.

    Args:
        path: A file written by :func:`save_checkpoint`.
        device: Where to put the model.

    The network is built without weights (on the meta device) and takes the
    file's tensors, mapped from the file, as its own: no random
    initialisation, and the weights are never held twice.

    Returns:
        The model in eval mode on ``device`` and its configuration.

    Raises:
        CheckpointError: Unsafe, foreign, wrong-version or incomplete file.

    """
    payload = read_checkpoint(path, mmap=True)
    config = ModelConfig.from_dict(payload["config"])
    with torch.device("meta"):
        model = config.build_model()
    state = payload["state_dict"]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing keys {missing[:5]}" if missing else f"unexpected keys {unexpected[:5]}"
        raise CheckpointError(f"{path} does not match a {config.backbone} GLNet: {what}; "
                              "the file is incomplete or was edited by hand")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: {key} has shape {tuple(value.shape)}, expected "
                f"{tuple(expected[key].shape)} for {config.backbone} with "
                f"{config.in_channels} bands and {config.num_classes} classes")
    model.load_state_dict(state, assign=True)
    return Checkpoint(model=model.to(device).eval(), config=config, path=Path(path))
