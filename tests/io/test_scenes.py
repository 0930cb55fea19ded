import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

from glnet_geo.errors import InputError
from glnet_geo.io.scenes import default_halo, in_bands, scene_grid


def test_one_scene_is_the_whole_raster():
    (scene,) = scene_grid(300, 200, scene_size=400, halo=50)
    assert scene.read == Window(0, 0, 200, 300)
    assert scene.core == scene.read
    assert scene.core_in_read == Window(0, 0, 200, 300)


def test_grid_of_scenes_with_halo():
    scenes = scene_grid(1000, 700, scene_size=400, halo=50)
    # rows: ceil((1000 - 400) / 300) + 1 = 3, columns: ceil(300 / 300) + 1 = 2
    assert len(scenes) == 6
    assert [s.index for s in scenes] == list(range(6))
    assert all(s.read.width == 400 and s.read.height == 400 for s in scenes)
    assert scenes[0].read == Window(0, 0, 400, 400)
    assert scenes[-1].read == Window(300, 600, 400, 400)


def test_scenes_in_bands_go_down_each_band_first():
    scenes = scene_grid(1000, 1000, scene_size=400, halo=50)  # 3 x 3 scenes, reads at 0 300 600
    order = [s.index for s in in_bands(scenes, band_width=600)]
    assert order == [0, 1, 3, 4, 6, 7, 2, 5, 8]
    assert [s.index for s in in_bands(scenes, band_width=1000)] == list(range(9))


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 900), width=st.integers(1, 900),
       scene_size=st.integers(16, 400), halo_fraction=st.floats(0, 0.49))
def test_cores_tile_the_raster_and_keep_the_halo(height, width, scene_size, halo_fraction):
    halo = int(scene_size * halo_fraction)
    if scene_size - 2 * halo < 1:
        halo = (scene_size - 1) // 2
    scenes = scene_grid(height, width, scene_size, halo)
    cover = np.zeros((height, width), dtype=np.int32)
    for s in scenes:
        core, read = s.core, s.read
        cover[core.toslices()] += 1
        # read windows lie inside the raster and are scene-sized where the raster allows
        assert read.col_off >= 0 and read.row_off >= 0
        assert read.col_off + read.width <= width and read.row_off + read.height <= height
        assert read.height == min(scene_size, height) and read.width == min(scene_size, width)
        inner = s.core_in_read
        # the core lies in the read window, at least `halo` from every inner edge
        assert inner.col_off >= 0 and inner.row_off >= 0
        assert inner.col_off + inner.width <= read.width
        assert inner.row_off + inner.height <= read.height
        if core.col_off > 0:
            assert inner.col_off >= halo
        if core.row_off > 0:
            assert inner.row_off >= halo
        if core.col_off + core.width < width:
            assert read.width - inner.col_off - inner.width >= halo
        if core.row_off + core.height < height:
            assert read.height - inner.row_off - inner.height >= halo
    assert (cover == 1).all()


def test_halo_too_large_is_a_clear_error():
    with pytest.raises(InputError, match="--scene-size"):
        scene_grid(1000, 1000, scene_size=100, halo=50)


def test_default_halo_is_half_a_patch():
    assert default_halo(508) == 254
