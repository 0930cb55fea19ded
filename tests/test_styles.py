import xml.etree.ElementTree as ET

import pandas as pd
import pyogrio
import pytest

from glnet_geo.styles import (
    ClassStyle,
    add_layer_style,
    aux_xml_path,
    class_styles,
    pam_categories,
    polygon_qml,
    qml_path,
    raster_qml,
    write_text,
)

STYLES = class_styles(["water", "forest"], [(0, 90, 255), (20, 140, 40)])


def test_class_styles_pair_names_and_colours():
    assert STYLES == [ClassStyle(0, "water", (0, 90, 255)), ClassStyle(1, "forest", (20, 140, 40))]
    assert STYLES[0].hex == "#005aff"
    with pytest.raises(ValueError):
        class_styles(["a", "b"], [(1, 2, 3)])


def test_sidecar_names_follow_gis_conventions():
    assert qml_path("out/classes.tif").as_posix() == "out/classes.qml"
    assert aux_xml_path("out/classes.tif").as_posix() == "out/classes.tif.aux.xml"


def test_raster_qml_is_a_paletted_renderer():
    root = ET.fromstring(raster_qml(STYLES))
    renderer = root.find("pipe/rasterrenderer")
    assert (renderer.get("type"), renderer.get("band")) == ("paletted", "1")
    assert [(e.get("value"), e.get("color"), e.get("label"))
            for e in renderer.iter("paletteEntry")] == [("0", "#005aff", "water"),
                                                        ("1", "#148c28", "forest")]


def test_polygon_qml_categorises_on_class_name():
    root = ET.fromstring(polygon_qml(STYLES))
    renderer = root.find("renderer-v2")
    assert (renderer.get("type"), renderer.get("attr")) == ("categorizedSymbol", "class_name")
    assert [c.get("value") for c in renderer.iter("category")] == ["water", "forest"]
    fills = [s.find("layer/Option/Option[@name='color']").get("value")
             for s in renderer.iter("symbol")]
    assert fills == ["0,90,255,255", "20,140,40,255"]


def test_pam_categories_leave_gaps_unnamed():
    gap = [ClassStyle(0, "bare", (1, 2, 3)), ClassStyle(2, "crop", (4, 5, 6))]
    band = ET.fromstring(pam_categories(gap)).find("PAMRasterBand")
    assert [c.text or "" for c in band.iter("Category")] == ["bare", "", "crop"]
    table = band.find("GDALRasterAttributeTable")
    assert table.get("tableType") == "thematic"
    assert [[f.text for f in row] for row in table.iter("Row")] == [
        ["0", "bare", "1", "2", "3", "#010203"], ["2", "crop", "4", "5", "6", "#040506"]]


def test_write_text_leaves_no_temporary_file(tmp_path):
    write_text(tmp_path / "a.qml", "<qgis/>")
    write_text(tmp_path / "a.qml", "<qgis></qgis>")
    assert [p.name for p in tmp_path.iterdir()] == ["a.qml"]
    assert (tmp_path / "a.qml").read_text() == "<qgis></qgis>"


def test_layer_styles_rows_accumulate(tmp_path):
    import geopandas as gpd
    import shapely

    gpkg = tmp_path / "p.gpkg"
    frame = gpd.GeoDataFrame({"class_name": ["water"]}, geometry=[shapely.box(0, 0, 1, 1)],
                             crs="EPSG:32633")
    pyogrio.write_dataframe(frame, gpkg, layer="p")
    add_layer_style(gpkg, "p", polygon_qml(STYLES))
    add_layer_style(gpkg, "p", polygon_qml(STYLES[:1]), name="second")
    styles = pyogrio.read_dataframe(gpkg, layer="layer_styles")
    assert styles.styleName.tolist() == ["glnet-geo classes", "second"]
    assert styles.useAsDefault.all() and (styles.f_table_name == "p").all()
    assert isinstance(styles.update_time.iloc[0], pd.Timestamp)
