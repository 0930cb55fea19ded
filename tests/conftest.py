"""Fixtures shared across test packages: tiny seeded checkpoints and rasters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import torch
from affine import Affine
from hypothesis import settings

try:
    import resource
except ImportError:  # Windows
    resource = None

from glnet_geo.checkpoint import ModelConfig, Normalization, save_checkpoint
from glnet_geo.models.stages import Stage

#: The suite runs as two processes on two cores (``pytest -n 2``): one torch thread each is
#: the fastest for the tests' tiny convolutions.
torch.set_num_threads(1)

#: Property tests draw the same examples on every run, so a failure reproduces and a run
#: never fails by the luck of the draw (each property has passed 2000 random examples).
settings.register_profile("repeatable", derandomize=True)
settings.load_profile("repeatable")

CLASS_NAMES = ["water", "forest", "urban"]
CLASS_COLORS = [(0, 90, 255), (20, 140, 40), (230, 30, 30)]
UTM = Affine(2.0, 0.0, 500000.0, 0.0, -2.0, 4500000.0)


def tiny_model(config: ModelConfig, seed: int = 2):
    """A seeded random GLNet whose logits depend on the input.

    The decoders' and the aggregation's small initial weights (std 0.01) give
    near-constant logits; Kaiming weights make every class appear.
    """
    torch.manual_seed(seed)
    model = config.build_model()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and ("fpn" in name or "aggregation" in name):
            torch.nn.init.kaiming_normal_(module.weight)
    if model.fixed_global_branch is not None:
        model.freeze_global_copy()
    return model.eval()


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory):
    """Factory of tiny ResNet-18 checkpoints (64 px views, 160 px scenes), cached per config."""
    cache: dict[tuple, Path] = {}

    def make(stage: Stage = Stage.GLOBAL_TO_LOCAL, bands: Sequence[int] = (1, 2, 3),
             scale: float = 255.0, **overrides) -> Path:
        key = (stage, tuple(bands), scale, tuple(sorted(overrides.items())))
        if key not in cache:
            n = len(bands)
            settings = dict(class_names=CLASS_NAMES, class_colors=CLASS_COLORS,
                            backbone="resnet18", bands=list(bands),
                            normalization=Normalization(scale, [0.5] * n, [0.25] * n),
                            global_size=64, patch_size=64, min_overlap=16, scene_size=160,
                            stage=stage)
            settings.update(overrides)
            config = ModelConfig(**settings)
            path = tmp_path_factory.mktemp("checkpoints") / f"tiny-{len(cache)}.pt"
            save_checkpoint(path, tiny_model(config), config)
            cache[key] = path
        return cache[key]

    return make


def smooth_field(shape: tuple[int, int, int], seed: int = 0, cell: int = 12) -> np.ndarray:
    """Seeded random images with blobs (so predictions form regions), values in [0, 1].

    Coarse noise (one value per ``cell`` pixels) upsampled bilinearly, plus fine noise.
    """
    count, height, width = shape
    rng = np.random.default_rng(seed)
    coarse = rng.random((1, count, height // cell + 2, width // cell + 2), dtype=np.float32)
    field = torch.nn.functional.interpolate(torch.from_numpy(coarse),
                                            size=(height, width), mode="bilinear")[0].numpy()
    field += 0.1 * rng.random(shape, dtype=np.float32)
    field -= field.min()
    return field / field.max()


@pytest.fixture
def make_raster(tmp_path):
    """Factory of seeded GeoTIFFs: any size, band count, dtype, CRS, nodata or alpha."""

    def make(name: str = "scene.tif", height: int = 150, width: int = 130, count: int = 3,
             dtype: str = "uint8", crs: str = "EPSG:32631", transform: Affine = UTM,
             nodata: float | None = None, alpha: bool = False, seed: int = 0,
             **profile) -> Path:
        top = {"uint8": 255, "uint16": 10000}.get(dtype, 1.0)
        data = (smooth_field((count, height, width), seed) * top).astype(dtype)
        if nodata is not None:
            data = np.where(data == nodata, data + 1, data).astype(dtype)
        path = tmp_path / name
        extra = {"photometric": "RGB", "alpha": "YES"} if alpha else {}
        if count == 4 and not alpha:
            extra = {"photometric": "MINISBLACK"}
        with rasterio.open(path, "w", driver="GTiff", height=height, width=width,
                           count=count + int(alpha), dtype=dtype, crs=crs, transform=transform,
                           nodata=nodata, **extra, **profile) as dst:
            dst.write(data, indexes=list(range(1, count + 1)))
            if alpha:
                mask = np.full((height, width), 255, np.uint8)
                mask[: height // 4, : width // 3] = 0
                dst.write(mask, count + 1)
        return path

    return make


@pytest.fixture
def corrupt_last_tile():
    """Garble a tiled GeoTIFF's bottom-right 16 px tile (read by the last scene only).

    The fixture is a function of the path that returns a repair function; the repair
    restores the bytes and keeps the file's size and modification time, like a transient
    read failure (the parts' manifest checks both).
    """

    def corrupt(path: Path) -> Callable[[], None]:
        with rasterio.open(path) as src:
            row, col = (src.height - 1) // 16, (src.width - 1) // 16
            offset = int(src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1))
            size = int(src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1))
        with open(path, "r+b") as f:
            f.seek(offset)
            original = f.read(size)
            f.seek(offset)
            f.write(b"\xff" * size)
        stat = os.stat(path)

        def repair() -> None:
            with open(path, "r+b") as f:
                f.seek(offset)
                f.write(original)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

        return repair

    return corrupt


@pytest.fixture
def damaged_raster(make_raster, corrupt_last_tile):
    """Factory of rasters that open but cannot be read to the end.

    ``truncated``: a tiled GeoTIFF cut after half its bytes (its header and first tiles
    survive); ``corrupt``: one whose last compressed tile is garbage; ``vrt``: a VRT whose
    source file is missing.
    """

    def make(kind: str, name: str | None = None, side: int = 96) -> Path:
        tiled = dict(tiled=True, blockxsize=16, blockysize=16, compress="deflate")
        if kind == "vrt":
            source = make_raster("source.tif", side, side)
            path = source.with_name(name or "mosaic.vrt")
            with rasterio.open(source) as src:
                rasterio.shutil.copy(src, path, driver="VRT")
            source.unlink()
            return path
        path = make_raster(name or f"{kind}.tif", side, side, **tiled)
        if kind == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif kind == "corrupt":
            corrupt_last_tile(path)
        else:
            raise ValueError(kind)
        return path

    return make


@pytest.fixture
def run_glnet():
    """Factory: run ``glnet-geo`` in a process of its own (see :func:`glnet_process`)."""
    return glnet_process


def glnet_process(*args: object, file_size_limit: int | None = None,
                  timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``glnet-geo ARGS`` in a process of its own (one torch thread), output captured.

    ``file_size_limit`` (bytes) makes every write beyond it fail the way a full disk does
    (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so the write returns ``EFBIG``).
    """

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    code = "from glnet_geo.cli import run; run()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          preexec_fn=limited if file_size_limit else None, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
