import functools
import http.server
import io
import json
import re
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from glnet_geo.checkpoint import load_checkpoint
from glnet_geo.errors import InputError, OutputExistsError
from glnet_geo.io.grid import boxes_from_windows, patch_windows
from glnet_geo.io.reader import RasterInput, normalize
from glnet_geo.models import GLNetMode
from glnet_geo.models.stages import Stage
from glnet_geo.precision import Precision
from glnet_geo.predict import (
    PredictMode,
    SceneSettings,
    blending,
    driver,
    predict_raster,
    predict_rasters,
)
from glnet_geo.predict.blending import blend_weights, patches_to_refine
from glnet_geo.predict.settings import prepare_checkpoint

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
_LOADED = {}


def loaded(path):
    """A checkpoint loaded once per session (building a model costs about a second)."""
    if path not in _LOADED:
        _LOADED[path] = load_checkpoint(path)
    return _LOADED[path]


def reference_prediction(checkpoint, raster_path, mode=PredictMode.GLNET):
    """The whole raster through GLNet at once, in memory: no scenes, no sub-batches, no disk.

    The global view is built by the same decimated read (on an in-memory copy of the
    array); the patches are slices of the whole normalised array. The network is the one
    ``predict --precision fp32`` runs (batch norm folded, channels-last).
    """
    config = checkpoint.config
    model = prepare_checkpoint(checkpoint, torch.device("cpu"), Precision.FP32).model
    settings = SceneSettings.from_config(config, mode)
    with rasterio.open(raster_path) as src:
        raw, profile = src.read(config.bands), src.profile
        valid = src.dataset_mask() != 0
    height, width = raw.shape[1:]
    size, patch = config.global_size, config.patch_size
    padded_h, padded_w = max(height, patch), max(width, patch)
    with MemoryFile() as memory, memory.open(**profile) as copy:
        copy.write(raw, indexes=config.bands)
        whole = RasterInput(copy, config.bands, config.normalization)
        view, _ = whole.read_global(rasterio.windows.Window(0, 0, padded_w, padded_h),
                                    (size, size))
    image = np.zeros((len(config.bands), padded_h, padded_w), np.float32)
    image[:, :height, :width] = normalize(raw, valid, config.normalization)
    global_image = torch.from_numpy(view)[None]
    with torch.inference_mode():
        if settings.network_mode is GLNetMode.GLOBAL:
            logits = model(global_image, None, None, mode=GLNetMode.GLOBAL).logits
            probs = F.interpolate(logits, size=(padded_h, padded_w), mode="bilinear",
                                  align_corners=False).softmax(1)[0]
        else:
            windows = patch_windows(padded_h, padded_w, patch, config.min_overlap)
            patches = torch.stack([torch.from_numpy(image[(slice(None), *w.toslices())])
                                   for w in windows])
            out = model(global_image, patches, boxes_from_windows(windows, padded_h, padded_w),
                        mode=settings.network_mode, scene_shape=(padded_h, padded_w))
            logits = out.local_logits if mode is PredictMode.LOCAL else out.logits
            weight = blend_weights(patch)
            up = F.interpolate(logits, size=(patch, patch), mode="bilinear",
                               align_corners=False).softmax(1) * weight
            total = torch.zeros((config.num_classes, padded_h, padded_w))
            weights = torch.zeros((padded_h, padded_w))
            for p, w in zip(up, windows, strict=True):
                total[(slice(None), *w.toslices())] += p
                weights[w.toslices()] += weight
            probs = total / weights
    probs = probs[:, :height, :width].numpy()
    classes = probs.argmax(0).astype(np.uint8)
    classes[~valid] = 255
    return classes, probs, valid


def read(path, band=1):
    with rasterio.open(path) as src:
        return src.read(band)


@pytest.mark.parametrize(("stage", "mode"), [
    (Stage.GLOBAL_TO_LOCAL, PredictMode.GLNET),
    (Stage.LOCAL_TO_GLOBAL, PredictMode.GLNET),
    (Stage.GLOBAL_TO_LOCAL, PredictMode.LOCAL),
    (Stage.GLOBAL_TO_LOCAL, PredictMode.GLOBAL),
])
def test_streamed_prediction_equals_the_whole_array_in_memory(make_checkpoint, make_raster,
                                                               tmp_path, stage, mode):
    checkpoint = loaded(make_checkpoint(stage))
    raster = make_raster(height=100, width=90, nodata=0)  # one 160 px scene, 2x2 patches
    out, probs = tmp_path / "classes.tif", tmp_path / "probs.tif"
    result = predict_raster(checkpoint, raster, out, probabilities=probs, mode=mode,
                            batch_size=3, device="cpu", precision="fp32", progress=False)
    assert result.scenes == 1
    expected, expected_probs, valid = reference_prediction(checkpoint, raster, mode)
    assert len(np.unique(expected)) >= 2, "the test model must predict several classes"
    assert np.array_equal(read(out), expected)
    with rasterio.open(probs) as src:
        written = src.read()
        assert np.array_equal(src.dataset_mask() != 0, valid)
    assert np.abs(written.astype(int) - np.rint(expected_probs * 255)).max() <= 1
    # without --probabilities, global mode takes the argmax of the logits (no softmax)
    predict_raster(checkpoint, raster, out, mode=mode, device="cpu", precision="fp32",
                   progress=False, overwrite=True)
    assert np.array_equal(read(out), expected)


def test_global_mode_predicts_scenes_together_as_one_at_a_time(make_checkpoint, make_raster,
                                                                 tmp_path, monkeypatch):
    checkpoint = loaded(make_checkpoint())
    raster = make_raster(height=230, width=250, nodata=0)  # 3 x 3 scenes, edges padded
    passes = []
    real = blending.global_class_ids

    def counted(model, raster, scenes, *args, **kwargs):
        passes.append(len(scenes))
        return real(model, raster, scenes, *args, **kwargs)

    monkeypatch.setattr(blending, "global_class_ids", counted)
    one, together = tmp_path / "one.tif", tmp_path / "together.tif"
    options = dict(mode="global", scene_size=128, halo=16, device="cpu", precision="fp32",
                   progress=False)
    assert predict_raster(checkpoint, raster, one, batch_size=1, **options).scenes == 9
    assert passes == [1] * 9
    passes.clear()
    predict_raster(checkpoint, raster, together, **options)
    assert passes == [4, 4, 1]
    classes = read(one)
    assert len(np.unique(classes)) >= 3
    assert np.array_equal(read(together), classes)


def test_raster_smaller_than_a_patch(make_checkpoint, make_raster, tmp_path):
    checkpoint = loaded(make_checkpoint())
    raster = make_raster(height=40, width=51)
    out = tmp_path / "tiny.tif"
    predict_raster(checkpoint, raster, out, device="cpu", precision="fp32", progress=False)
    expected, _, _ = reference_prediction(checkpoint, raster)
    classes = read(out)
    assert classes.shape == (40, 51)
    assert np.array_equal(classes, expected)


def test_scene_grid_adds_no_seams(make_checkpoint, make_raster, tmp_path):
    """Four scenes with a halo give exactly the classes of one scene covering everything.

    What is tested is the scene grid, the halo, the windowed reads at scene offsets and
    the stitching of cores, so everything else is held equal: the global branch is
    silenced (with random weights, each scene's own global view shifts the classes: that
    is GLNet's global context, not stitching), and the sizes are chosen so that the
    scenes' patch grids fall on the single scene's grid (offsets 0, 24, 48, ... px; a
    random local branch is sensitive to where a pixel sits in its patches).
    """
    checkpoint = load_checkpoint(make_checkpoint(global_size=32, patch_size=32, min_overlap=8))
    for parameter in checkpoint.model.global_branch.parameters():
        if parameter.ndim == 4:
            torch.nn.init.zeros_(parameter)
    raster = make_raster(height=128, width=104)
    single, several = tmp_path / "single.tif", tmp_path / "several.tif"
    assert predict_raster(checkpoint, raster, single, scene_size=128, progress=False).scenes == 1
    assert predict_raster(checkpoint, raster, several, scene_size=80, halo=16,
                          progress=False).scenes == 4
    classes = read(several)
    assert len(np.unique(classes)) == 3
    assert np.array_equal(classes, read(single))


def test_scenes_in_bands_write_the_same_raster(make_checkpoint, make_raster, tmp_path,
                                               monkeypatch):
    checkpoint = load_checkpoint(make_checkpoint(global_size=32, patch_size=32, min_overlap=8))
    raster = make_raster(height=128, width=200)
    rows = tmp_path / "rows.tif"
    predict_raster(checkpoint, raster, rows, scene_size=80, halo=16, progress=False)
    monkeypatch.setattr(driver, "GDAL_CACHE_MB", 0)  # bands one scene wide
    with RasterInput.open(raster, [1, 2, 3], checkpoint.config.normalization) as opened:
        assert driver.cached_band_width(opened, 80) == 80
    bands = tmp_path / "bands.tif"
    assert predict_raster(checkpoint, raster, bands, scene_size=80, halo=16,
                          progress=False).scenes == 8
    assert np.array_equal(read(bands), read(rows))


@pytest.mark.parametrize("kind", ["utm", "geographic", "non-square", "uint16-1band", "4band"])
def test_output_lines_up_with_the_input(make_checkpoint, make_raster, tmp_path, kind):
    raster_kwargs, checkpoint_kwargs = {}, {}
    if kind == "geographic":
        raster_kwargs = dict(crs="EPSG:4326", transform=Affine(1e-4, 0, 7.5, 0, -1e-4, 46.2))
    elif kind == "non-square":
        raster_kwargs = dict(transform=Affine(0.5, 0, 300000, 0, -1.25, 5000000))
    elif kind == "uint16-1band":
        raster_kwargs = dict(count=1, dtype="uint16")
        checkpoint_kwargs = dict(bands=(1,), scale=10000.0)
    elif kind == "4band":
        raster_kwargs = dict(count=4)
        checkpoint_kwargs = dict(bands=(1, 2, 3, 4))
    raster = make_raster(height=70, width=83, **raster_kwargs)
    out = tmp_path / "classes.tif"
    predict_raster(loaded(make_checkpoint(**checkpoint_kwargs)), raster, out, progress=False)
    assert cog_validate(out, quiet=True)[0]
    with rasterio.open(raster) as src, rasterio.open(out) as dst:
        assert dst.driver == "GTiff"
        assert dst.crs == src.crs
        assert dst.transform == src.transform
        assert (dst.width, dst.height) == (src.width, src.height)
        assert dst.dtypes == ("uint8",) and dst.nodata == 255
        assert json.loads(dst.tags(1)["class_names"]) == ["water", "forest", "urban"]
        assert dst.colormap(1)[2][:3] == (230, 30, 30)
        assert (dst.read(1) < 3).all()


def test_nodata_footprint_of_a_real_landsat_scene(make_checkpoint, tmp_path):
    raster = SHARED / "rasterio" / "RGB.byte.tif"
    if not raster.exists():
        pytest.skip("shared test data not available")
    out = tmp_path / "classes.tif"
    # global mode keeps this 791 x 718 px raster fast; its 9 scenes still go through
    # the scene grid, the masked reads and the windowed writes
    result = predict_raster(loaded(make_checkpoint()), raster, out, mode="global",
                            scene_size=320, progress=False)
    assert result.scenes == 9
    with rasterio.open(raster) as src, rasterio.open(out) as dst:
        nodata = src.dataset_mask() == 0
        classes = dst.read(1)
        assert nodata.any() and (~nodata).any()
        assert np.array_equal(classes == 255, nodata)
        assert (dst.crs, dst.transform) == (src.crs, src.transform)


def test_alpha_band_is_a_mask(make_checkpoint, make_raster, tmp_path):
    raster = make_raster(height=60, width=90, alpha=True)  # RGBA with an RGB checkpoint
    out = tmp_path / "classes.tif"
    predict_raster(loaded(make_checkpoint()), raster, out, progress=False)
    with rasterio.open(raster) as src:
        transparent = src.read(4) == 0
    assert np.array_equal(read(out) == 255, transparent)


def test_vrt_mosaic_predicts_like_the_merged_raster(make_checkpoint, make_raster, tmp_path):
    whole = make_raster("whole.tif", height=100, width=120)
    with rasterio.open(whole) as src:
        profile, data = src.profile, src.read()
    halves = []
    for i, cols in enumerate((slice(0, 60), slice(60, 120))):
        part = tmp_path / f"half{i}.tif"
        window = rasterio.windows.Window(cols.start, 0, 60, 100)
        with rasterio.open(part, "w", **{**profile, "width": 60,
                                         "transform": src.window_transform(window)}) as dst:
            dst.write(data[:, :, cols])
        halves.append(part)
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}">'
        + "".join(f"<SimpleSource><SourceFilename relativeToVRT=\"1\">{p.name}</SourceFilename>"
                  f"<SourceBand>{b}</SourceBand><SrcRect xOff=\"0\" yOff=\"0\" xSize=\"60\" "
                  f"ySize=\"100\"/><DstRect xOff=\"{60 * i}\" yOff=\"0\" xSize=\"60\" "
                  "ySize=\"100\"/></SimpleSource>" for i, p in enumerate(halves))
        + "</VRTRasterBand>" for b in (1, 2, 3))
    vrt = tmp_path / "mosaic.vrt"
    vrt.write_text(f'<VRTDataset rasterXSize="120" rasterYSize="100"><SRS>{src.crs.to_wkt()}'
                   f"</SRS><GeoTransform>{', '.join(map(str, src.transform.to_gdal()))}"
                   f"</GeoTransform>{bands}</VRTDataset>")
    checkpoint = loaded(make_checkpoint())
    predict_raster(checkpoint, vrt, tmp_path / "from-vrt.tif", progress=False)
    predict_raster(checkpoint, whole, tmp_path / "from-tif.tif", progress=False)
    assert np.array_equal(read(tmp_path / "from-vrt.tif"), read(tmp_path / "from-tif.tif"))


def test_several_inputs_write_one_raster_each(make_checkpoint, make_raster, tmp_path):
    inputs = [make_raster("a.tif", 50, 40, seed=1), make_raster("b.tif", 45, 70, seed=2)]
    results = predict_rasters(loaded(make_checkpoint()), inputs, tmp_path / "out", mode="global",
                              preview=tmp_path / "png", progress=False)
    assert [r.classes.name for r in results] == ["a.tif", "b.tif"]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["a.png", "b.png"]
    assert read(results[1].classes).shape == (45, 70)
    with pytest.raises(OutputExistsError):
        predict_rasters(loaded(make_checkpoint()), inputs, tmp_path / "out", progress=False)


def test_inputs_with_the_same_stem_are_refused(make_checkpoint, make_raster, tmp_path):
    a = make_raster("x.tif", 40, 40)
    (tmp_path / "other").mkdir()
    b = tmp_path / "other" / "x.tif"
    b.write_bytes(a.read_bytes())
    with pytest.raises(InputError, match=r"x.tif"):
        predict_rasters(loaded(make_checkpoint()), [a, b], tmp_path / "out", progress=False)


def test_a_bad_input_leaves_no_output_directory_behind(make_checkpoint, make_raster, tmp_path):
    inputs = [make_raster("a.tif", 40, 40), tmp_path / "missing.tif"]
    (tmp_path / "kept").mkdir()
    with pytest.raises(InputError, match=r"missing\.tif"):
        predict_rasters(loaded(make_checkpoint()), inputs, tmp_path / "new" / "out",
                        preview=tmp_path / "png", probabilities=tmp_path / "kept",
                        progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "kept"]


def test_local_mode_needs_a_trained_local_branch(make_checkpoint, make_raster, tmp_path):
    with pytest.raises(InputError, match="--mode global"):
        predict_raster(loaded(make_checkpoint(Stage.GLOBAL)), make_raster(), tmp_path / "o.tif",
                       mode="local", progress=False)
    assert not (tmp_path / "o.tif").exists()


def test_stage_one_checkpoint_predicts_with_the_global_branch(make_checkpoint, make_raster,
                                                              tmp_path):
    checkpoint, raster = loaded(make_checkpoint(Stage.GLOBAL)), make_raster(height=90, width=100)
    predict_raster(checkpoint, raster, tmp_path / "glnet.tif", progress=False)
    predict_raster(checkpoint, raster, tmp_path / "global.tif", mode="global", progress=False)
    assert np.array_equal(read(tmp_path / "glnet.tif"), read(tmp_path / "global.tif"))


def biased_global_branch(path, favourite: int):
    """The checkpoint with G sure of class ``favourite`` everywhere (L unchanged)."""
    checkpoint = load_checkpoint(path)
    with torch.no_grad():
        checkpoint.model.global_branch.fpn.classify.bias[favourite] += 100.0
    return checkpoint


def predict_classes(checkpoint, raster, path, **options):
    predict_raster(checkpoint, raster, path, probabilities=path.with_suffix(".p.tif"),
                   progress=False, **options)
    with rasterio.open(path.with_suffix(".p.tif")) as src:
        return read(path), src.read()


@pytest.mark.parametrize("stage", [Stage.GLOBAL_TO_LOCAL, Stage.LOCAL_TO_GLOBAL])
def test_skip_threshold_one_never_skips(make_checkpoint, make_raster, tmp_path, stage):
    checkpoint, raster = loaded(make_checkpoint(stage)), make_raster(height=150, width=130)
    plain = predict_classes(checkpoint, raster, tmp_path / "plain.tif")
    never = predict_classes(checkpoint, raster, tmp_path / "never.tif", skip_threshold=1.0)
    assert np.array_equal(plain[0], never[0]) and np.array_equal(plain[1], never[1])
    with rasterio.open(tmp_path / "never.tif") as src:
        assert src.tags()["skip_threshold"] == "1.0"


def test_where_g_is_sure_of_background_g_stands(make_checkpoint, make_raster, tmp_path):
    checkpoint = biased_global_branch(make_checkpoint(), favourite=0)
    raster = make_raster(height=150, width=130)
    global_only = predict_classes(checkpoint, raster, tmp_path / "g.tif", mode="global")
    for name, options in (("skip", {"skip_threshold": 0.9}),
                          ("c2f", {"mode": "coarse-to-fine"})):
        guided = predict_classes(checkpoint, raster, tmp_path / f"{name}.tif", **options)
        assert (guided[0] == 0).all()
        assert np.array_equal(guided[0], global_only[0])
        assert np.array_equal(guided[1], global_only[1])


def test_in_g_l_g_the_frozen_stage_one_g_guides(make_checkpoint, make_raster, tmp_path):
    checkpoint = load_checkpoint(make_checkpoint(Stage.LOCAL_TO_GLOBAL))
    with torch.no_grad():
        checkpoint.model.fixed_global_branch.fpn.classify.bias[0] += 100.0
    raster = make_raster(height=150, width=130)
    c2f = predict_classes(checkpoint, raster, tmp_path / "c2f.tif", mode="coarse-to-fine")
    assert (c2f[0] == 0).all() and (c2f[1][0] == 255).all()
    plain = predict_classes(checkpoint, raster, tmp_path / "plain.tif")
    assert not (plain[0] == 0).all()


def test_coarse_to_fine_refines_all_of_a_scene_full_of_foreground(make_checkpoint, make_raster,
                                                                  tmp_path):
    checkpoint = biased_global_branch(make_checkpoint(), favourite=1)
    raster = make_raster(height=150, width=130)
    plain = predict_classes(checkpoint, raster, tmp_path / "plain.tif")
    c2f = predict_classes(checkpoint, raster, tmp_path / "c2f.tif", mode="coarse-to-fine")
    assert np.array_equal(plain[0], c2f[0]) and np.array_equal(plain[1], c2f[1])
    # Sure of class 1 everywhere: patch skipping keeps G's prediction instead.
    skipped = predict_classes(checkpoint, raster, tmp_path / "skip.tif", skip_threshold=0.9)
    assert (skipped[0] == 1).all()


def test_patches_to_refine_combines_coarse_to_fine_and_skipping():
    settings = SceneSettings(PredictMode.COARSE_TO_FINE, GLNetMode.GLOBAL_TO_LOCAL, 64, 32, 0,
                             4, skip_threshold=0.9)
    coarse = torch.zeros((2, 128, 128))
    coarse[0] = 0.95                                   # background, sure
    coarse[0, 40:48, 40:48] = 0.3                      # a building G is fairly sure of
    coarse[0, 100:128, 0:20] = 0.6                     # background G is unsure of
    coarse[1] = 1 - coarse[0]
    windows = patch_windows(128, 128, 32, 0)
    chosen = patches_to_refine(coarse, windows, settings)
    assert [windows[i] for i in chosen] == [Window(32, 32, 32, 32)]
    everywhere = SceneSettings(PredictMode.GLNET, GLNetMode.GLOBAL_TO_LOCAL, 64, 32, 0, 4, 0.9)
    assert [windows[i] for i in patches_to_refine(coarse, windows, everywhere)] == [
        Window(32, 32, 32, 32), Window(0, 96, 32, 32)]


def test_a_checkpoint_trained_coarse_to_fine_predicts_so(make_checkpoint):
    config = loaded(make_checkpoint(coarse_to_fine=True)).config
    assert SceneSettings.from_config(config).mode is PredictMode.COARSE_TO_FINE
    assert SceneSettings.from_config(config, "global").mode is PredictMode.GLOBAL


@pytest.mark.parametrize(("stage", "options", "message"), [
    (Stage.GLOBAL, {"skip_threshold": 0.9}, "--skip-threshold needs G's prediction"),
    (Stage.GLOBAL_TO_LOCAL, {"skip_threshold": 0.9, "mode": "local"}, "not --mode local"),
    (Stage.GLOBAL_TO_LOCAL, {"skip_threshold": 0.9, "mode": "global"}, "not --mode global"),
    (Stage.GLOBAL_TO_LOCAL, {"skip_threshold": 0.0}, "--skip-threshold 0.0"),
    (Stage.GLOBAL_TO_LOCAL, {"skip_threshold": 1.5}, "--skip-threshold 1.5"),
])
def test_guided_prediction_refuses_what_it_cannot_do(make_checkpoint, stage, options, message):
    config = loaded(make_checkpoint(stage)).config
    with pytest.raises(InputError, match=message):
        SceneSettings.from_config(config, options.pop("mode", "glnet"), **options)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP range requests, which GDAL's ``/vsicurl/`` relies on."""

    def log_message(self, *args):  # keep the test output quiet
        pass

    def send_head(self):
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not ranged or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start = int(ranged[1])
        end = min(int(ranged[2] or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BytesIO(data[start:end + 1])


@pytest.fixture
def http_folder(tmp_path):
    """A folder served on the loopback interface; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_RangeHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def test_gdal_virtual_paths_predict_like_the_file(make_checkpoint, make_raster, http_folder,
                                                  tmp_path):
    raster = make_raster("scene.tif", height=90, width=110, tiled=True, blockxsize=32,
                         blockysize=32)
    folder, url = http_folder
    shutil.copy(raster, folder / "scene.tif")
    with zipfile.ZipFile(tmp_path / "scenes.zip", "w") as archive:
        archive.write(raster, "scene.tif")
    checkpoint = loaded(make_checkpoint())
    expected = predict_raster(checkpoint, raster, tmp_path / "file.tif", progress=False)
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        for name, source in (("curl", f"/vsicurl/{url}/scene.tif"),
                             ("zip", f"/vsizip/{tmp_path / 'scenes.zip'}/scene.tif")):
            result = predict_raster(checkpoint, source, tmp_path / f"{name}.tif",
                                    progress=False)
            with rasterio.open(result.classes) as got, rasterio.open(expected.classes) as want:
                assert (got.crs, got.transform, got.shape) == (want.crs, want.transform,
                                                               want.shape)
            assert np.array_equal(read(result.classes), read(expected.classes)), name


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(make_checkpoint, make_raster, tmp_path, monkeypatch,
                                         terminal):
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    predict_raster(loaded(make_checkpoint()), make_raster("scene.tif", 40, 50),
                   tmp_path / "classes.tif")
    if terminal:
        assert "scene.tif" in stderr.getvalue() and "patch" in stderr.getvalue()
    else:
        assert stderr.getvalue() == ""
