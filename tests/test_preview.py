import numpy as np
import rasterio
from PIL import Image

from glnet_geo.checkpoint import Normalization
from glnet_geo.io.reader import RasterInput
from glnet_geo.preview import preview_shape, render, stretch, write_preview

NAMES = ["water", "forest", "urban"]
COLORS = [(0, 90, 255), (20, 140, 40), (230, 30, 30)]


def test_preview_shape_keeps_the_aspect_ratio():
    assert preview_shape(100, 50) == (100, 50)
    assert preview_shape(100_000, 50_000, max_size=1000) == (1000, 500)


def test_stretch_ignores_invalid_pixels():
    image = np.arange(3 * 10 * 10, dtype=np.float32).reshape(3, 10, 10)
    valid = np.ones((10, 10), bool)
    valid[0] = False
    rgb = stretch(image, valid)
    assert rgb.shape == (10, 10, 3)
    assert rgb.min() == 0 and rgb.max() == 1
    assert (rgb[0] == 0).all()


def test_legend_lists_the_classes_present():
    classes = np.zeros((20, 30), np.uint8)
    classes[:, 15:] = 2
    classes[0, 0] = 255
    fig = render(np.zeros((20, 30, 3)), classes, NAMES, COLORS)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["0 water", "2 urban"]


def test_write_preview(make_raster, tmp_path):
    raster_path = make_raster(height=120, width=200)
    classes_path = tmp_path / "classes.tif"
    with rasterio.open(raster_path) as src:
        profile = src.profile | {"count": 1, "nodata": 255}
    classes = np.zeros((120, 200), np.uint8)
    classes[:, 100:] = 2
    with rasterio.open(classes_path, "w", **profile) as dst:
        dst.write(classes, 1)
    out = tmp_path / "preview.png"
    norm = Normalization(255.0, [0.0] * 3, [1.0] * 3)
    with RasterInput.open(raster_path, [1, 2, 3], norm) as raster:
        assert write_preview(raster, classes_path, out, NAMES, COLORS, max_size=100) == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.tif", "preview.png",
                                                          "scene.tif"]
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    # the red class tints the image: some pixels are much redder than they are green
    assert ((image[..., 0] - image[..., 1]) > 60).any()
