"""Staged writing and styles: nothing half-written, styles where the format keeps them."""

from __future__ import annotations

import pyogrio
import pytest
from mask_factory import blobs, categories_of, palette_mask, write_mask

from glnet_geo.vectorize import vectorize_raster


def test_geopackage_gets_a_default_layer_style(tmp_path):
    mask = palette_mask(tmp_path / "m.tif")
    out = vectorize_raster(mask, tmp_path / "landcover.gpkg", classes=[1, 2])
    assert [name for name, _ in pyogrio.list_layers(out)] == ["landcover", "layer_styles"]
    styles = pyogrio.read_dataframe(out, layer="layer_styles")
    assert len(styles) == 1
    row = styles.iloc[0]
    assert (row.f_table_name, row.f_geometry_column, bool(row.useAsDefault)) == (
        "landcover", pyogrio.read_info(out, layer="landcover")["geometry_name"], True)
    assert categories_of(row.styleQML) == [("crop", "250,200,0,255"), ("water", "0,0,255,255")]
    assert not (tmp_path / "landcover.qml").exists()


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".fgb", ".parquet"])
def test_other_formats_get_a_qml_beside_them(tmp_path, suffix):
    mask = palette_mask(tmp_path / "m.tif")
    vectorize_raster(mask, tmp_path / f"landcover{suffix}")
    qml = (tmp_path / "landcover.qml").read_text()
    assert categories_of(qml) == [("bare", "200,200,200,255"), ("crop", "250,200,0,255"),
                                  ("water", "0,0,255,255")]


def test_raster_style_of_the_same_name_is_kept(tmp_path, caplog):
    mask = palette_mask(tmp_path / "classes.tif")
    (tmp_path / "classes.qml").write_text("<qgis><pipe><rasterrenderer/></pipe></qgis>")
    vectorize_raster(mask, tmp_path / "classes.geojson")
    assert "rasterrenderer" in (tmp_path / "classes.qml").read_text()
    assert "styles the class raster of the same base name" in caplog.text


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    from glnet_geo.vectorize.finishing import Finisher

    mask = write_mask(tmp_path / "m.tif", blobs(40, 40, classes=3, cell=4, seed=7))

    def broken(self, regions):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Finisher, "__call__", broken)
    with pytest.raises(RuntimeError):
        vectorize_raster(mask, tmp_path / "o.geojson", block_size=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif"]
