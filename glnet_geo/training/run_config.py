"""A training run's whole configuration, as YAML: saved with every run, replayed by ``--config``.

:func:`glnet_geo.training.trainer.train` writes ``run.yaml`` into the run
directory and records the same mapping in the checkpoint (its ``run`` entry)::

    format: glnet-geo run
    format_version: 1
    output: model.pt
    data: {kind: custom, images: [tiles/*.tif], labels: [labels.gpkg], ...}
    training: {plan: all, backbone: resnet50, seed: 0, losses: {gamma: 6.0, ...}, ...}
    classes: {names: [...], colors: [...], ignore_index: null}   # what the data gave
    versions: {glnet-geo: ..., torch: ..., lightning: ..., torchgeo: ..., python: ...}

``glnet-geo train --config run.yaml`` reads ``data``, ``training`` and
``output`` back (:meth:`RunConfig.load`) and trains the same run again;
``classes`` and ``versions`` describe the run and are not read back. Paths
are kept as they were given, so a run replays from the same working folder.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

from glnet_geo.errors import InputError
from glnet_geo.training.data import DataSettings
from glnet_geo.training.module import LossSettings
from glnet_geo.training.settings import TrainSettings

#: The ``format`` header of a run file.
FORMAT = "glnet-geo run"
#: Version of the layout; a file of another version is refused.
FORMAT_VERSION = 1
#: Packages whose versions a run records.
RECORDED_PACKAGES = ("glnet-geo", "torch", "torchvision", "lightning", "torchgeo", "rasterio")


def _plain(value: Any) -> Any:
    """Turn enums, paths, tuples and sets into plain YAML values, recursively."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    return value


def package_versions() -> dict[str, str]:
    """Return the versions of the packages a run depends on (and Python's)."""
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["python"] = platform.python_version()
    return versions


@dataclass
class RunConfig:
    """What a training run is given: the data, every training option, the output.

    Attributes:
        data: Which data (:class:`~glnet_geo.training.data.DataSettings`).
        training: How to train (:class:`~glnet_geo.training.trainer.TrainSettings`,
            the seed included).
        output: The checkpoint the run writes.

    """

    data: DataSettings
    training: TrainSettings
    output: str

    def to_dict(self) -> dict[str, Any]:
        """Return the plain mapping written as YAML (without classes and versions)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "output": os.fspath(self.output),
                "data": _plain(dataclasses.asdict(self.data)),
                "training": _plain(dataclasses.asdict(self.training))}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the run file") -> RunConfig:
        """Read a mapping written by :meth:`to_dict` (extra descriptive keys are ignored).

        Raises:
            InputError: Not a run file, another format version, or unknown
                settings.

        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{source} is not a glnet-geo run file (no 'format: {FORMAT}'); "
                             "give the run.yaml of a run directory")
        if data.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{source} has run format version {data.get('format_version')}, "
                             f"this glnet-geo reads version {FORMAT_VERSION}; use the version "
                             "that wrote it")
        try:
            training = dict(data["training"])
            training["losses"] = LossSettings(**training.get("losses", {}))
            training["given"] = frozenset(training.get("given", ()))
            return cls(data=DataSettings(**data["data"]), training=TrainSettings(**training),
                       output=str(data["output"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source} does not describe a run ({type(exc).__name__}: {exc}); "
                             "give the run.yaml of a run directory, edited by hand only in "
                             "its values") from None

    def record(self, classes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return :meth:`to_dict` with the run's classes and the package versions."""
        out = self.to_dict()
        if classes is not None:
            out["classes"] = _plain(classes)
        out["versions"] = package_versions()
        return out

    def save(self, path: str | os.PathLike, classes: dict[str, Any] | None = None) -> Path:
        """Write the run as YAML (written whole, then renamed)."""
        import yaml

        from glnet_geo.styles import write_text

        text = yaml.safe_dump(self.record(classes), sort_keys=False, default_flow_style=False)
        return write_text(path, text)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunConfig:
        """Read a run file written by :meth:`save`.

        Raises:
            InputError: Missing, unreadable or not a run file.

        """
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"--config {path} does not exist; give the run.yaml of a run "
                             "directory (<output>.run/run.yaml)") from None
        except (OSError, yaml.YAMLError) as exc:
            reason = " ".join(str(exc).split())  # YAML errors span several lines
            raise InputError(f"--config {path} cannot be read as YAML ({reason}); give the "
                             "run.yaml of a run directory") from None
        return cls.from_dict(data, f"--config {path}")
