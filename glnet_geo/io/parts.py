"""Finished scenes kept on disk, so that a run can be resumed or spread over processes.

A :class:`PartStore` is a hidden work directory next to an output,
``.<output name>.parts/``, holding:

- ``manifest.json``: what the parts were computed from (input, checkpoint
  identity, prediction settings, scene grid). Resuming with a different
  manifest is refused, so parts of two different runs are never mixed.
- one small GeoTIFF per finished scene, ``scene-<index>.tif``, georeferenced
  on the scene's core: band 1 the classes (255 where the input is invalid),
  then, when probabilities are asked for, one uint8 band per class
  (``round(255 * p)``, 0 where invalid). Each part is written under a
  temporary name and renamed (:func:`os.replace`) by whoever computed it (a
  Dask worker or the local loop), so a part present under its final name is
  complete.

Only part paths travel between processes, never pixels. Assembly
(:meth:`PartStore.read`) gives back the core's arrays, which the caller writes
into the same :class:`glnet_geo.io.writer.CogWriter` the single-process path
uses. The directory is removed once the final outputs are published.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from glnet_geo.classes import NO_CLASS
from glnet_geo.errors import InputError, OutputError
from glnet_geo.io.scenes import Scene
from glnet_geo.io.writer import writing

#: Name of the manifest inside a part store.
MANIFEST = "manifest.json"
#: Format tag of the manifest, bumped when the part layout changes.
FORMAT = "glnet-geo parts 1"


def parts_directory(output: str | os.PathLike) -> Path:
    """Return the hidden work directory of ``output``: ``.<name>.parts`` beside it."""
    output = Path(output)
    return output.with_name(f".{output.name}.parts")


def write_part(path: str | os.PathLike, classes: np.ndarray,
               probabilities: np.ndarray | None = None,
               transform: Affine | None = None) -> Path:
    """Write one scene's core as a part GeoTIFF, atomically.

    Args:
        path: Final path of the part.
        classes: ``(h, w)`` uint8 class ids, 255 where invalid.
        probabilities: ``(K, h, w)`` uint8 scaled probabilities, or None.
        transform: Georeference of the core (for anyone inspecting a part).

    Returns:
        ``path``.

    """
    path = Path(path)
    bands = [classes[None]] if probabilities is None else [classes[None], probabilities]
    data = np.concatenate(bands)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with writing(path), rasterio.open(
                tmp, "w", driver="GTiff", width=classes.shape[1], height=classes.shape[0],
                count=data.shape[0], dtype="uint8", transform=transform or Affine.identity(),
                nodata=NO_CLASS, compress="DEFLATE", zlevel=1) as dst:
            dst.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))


class PartStore:
    """The finished scenes of one output, on disk.

    Args:
        directory: The work directory (see :func:`parts_directory`).
        scenes: The scene grid of the input.

    """

    def __init__(self, directory: str | os.PathLike, scenes: Sequence[Scene]) -> None:
        self.directory = Path(directory)
        self.scenes = list(scenes)

    @classmethod
    def prepare(cls, output: str | os.PathLike, scenes: Sequence[Scene],
                manifest: dict[str, Any], resume: bool, overwrite: bool = False) -> PartStore:
        """Create the work directory of ``output``, or reopen it to resume.

        Without ``resume`` any previous work directory is cleared. With
        ``resume`` the existing parts are kept if the stored manifest equals
        ``manifest``; otherwise the run is refused, unless ``overwrite``
        allows starting again from nothing.

        Args:
            output: The final output the parts are for.
            scenes: The scene grid.
            manifest: JSON-serialisable description of the run.
            resume: Keep the parts of an interrupted run with the same manifest.
            overwrite: With ``resume``, discard parts of a different run.

        Raises:
            InputError: ``resume`` and the parts come from a different run.
            OutputError: The work directory cannot be created.

        """
        directory = parts_directory(output)
        manifest = {"format": FORMAT, **json.loads(json.dumps(manifest))}
        path = directory / MANIFEST
        if directory.exists():
            stored = None
            if resume and path.is_file():
                try:
                    stored = json.loads(path.read_text())
                except (OSError, ValueError):
                    stored = {}
            if resume and stored is not None and stored != manifest and not overwrite:
                changed = ", ".join(_differences(stored, manifest))
                raise InputError(f"cannot resume {output}: its finished scenes in {directory} "
                                 f"were computed with other settings ({changed} differ); pass "
                                 "--overwrite to start it again")
            if not resume or stored != manifest:
                shutil.rmtree(directory)
        try:
            directory.mkdir(exist_ok=True)
            if not path.is_file():
                tmp = path.with_name(f".{MANIFEST}.partial")
                tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
                os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot create the work directory {directory} "
                              f"({exc.strerror}); choose a writable output location") from None
        return cls(directory, scenes)

    def path(self, index: int) -> Path:
        """Return the part path of scene ``index``."""
        return self.directory / f"scene-{index:06d}.tif"

    def done(self) -> list[Scene]:
        """Return the scenes whose part is finished."""
        return [s for s in self.scenes if self.path(s.index).is_file()]

    def missing(self) -> list[Scene]:
        """Return the scenes whose part is not written yet."""
        return [s for s in self.scenes if not self.path(s.index).is_file()]

    def read(self, scene: Scene) -> tuple[np.ndarray, np.ndarray | None]:
        """Read a finished part.

        Returns:
            ``(h, w)`` classes and ``(K, h, w)`` scaled probabilities (or None).

        Raises:
            OutputError: The part is missing or does not fit the scene's core.

        """
        path = self.path(scene.index)
        try:
            with rasterio.open(path) as src:
                data = src.read()
        except rasterio.errors.RasterioIOError:
            raise OutputError(f"finished scene {path} is missing or unreadable; rerun with "
                              "--resume to compute it again") from None
        if data.shape[1:] != (int(scene.core.height), int(scene.core.width)):
            raise OutputError(f"finished scene {path} is {data.shape[2]}x{data.shape[1]} px, "
                              f"expected the core {scene.core}; rerun with --overwrite")
        return data[0], (data[1:] if data.shape[0] > 1 else None)

    def remove(self) -> None:
        """Delete the work directory and every part in it."""
        shutil.rmtree(self.directory, ignore_errors=True)


def core_transform(transform: Affine, core: Window) -> Affine:
    """Return the georeference of a scene's core on a raster with ``transform``."""
    return transform @ Affine.translation(core.col_off, core.row_off)
