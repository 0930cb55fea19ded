"""Writing the features: chunks into a temporary GeoPackage, published once complete.

Features are appended in chunks to a GeoPackage under a temporary name next
to the output (:class:`glnet_geo.io.staging.Staging`). Publishing renames it
(GeoPackage output) or streams it, through Arrow record batches, into the
output's format under another temporary name, which is then renamed: nothing
half-written is ever left under the final name, and the temporary files are
removed on failure. How each format is written, and which files it
occupies, is its record's (:class:`glnet_geo.vectorize.formats.FormatRecord`).

Styles (:mod:`glnet_geo.styles`): polygons categorised on ``class_name`` with
the raster's palette colours, where the record says
(:class:`~glnet_geo.vectorize.formats.StyleHome`): as the default
``layer_styles`` row of a GeoPackage or as a QGIS ``.qml`` beside the output.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from glnet_geo.vectorize.formats import StyleHome, VectorFormat, Writer, output_files

if TYPE_CHECKING:
    import geopandas as gpd
    from rasterio.crs import CRS

    from glnet_geo.styles import ClassStyle

log = logging.getLogger(__name__)

#: The format features are staged in; an output of this format is the staged file, renamed.
STAGING = VectorFormat.GPKG


class StagedOutput:
    """Features appended to a temporary GeoPackage next to ``path``, published at the end.

    Publishing renames the GeoPackage (GPKG output) or streams it, through
    Arrow record batches, into the output format under another temporary name,
    which is then renamed. Temporary files are removed on failure.
    """

    def __init__(self, path: Path, fmt: VectorFormat, geometry_type: str,
                 columns: dict[str, str], crs: CRS) -> None:
        self.path, self.fmt = path, fmt
        self.geometry_type, self.columns, self.crs = geometry_type, columns, crs
        self.layer = path.stem
        from glnet_geo.io.staging import Staging

        # also removes what an ended (killed) run left beside the same output
        self._lease = Staging(path)
        self.staging = self._lease.path(".tmp" + STAGING.suffix)
        self.converted = self._lease.path(".tmp")
        self.count = 0
        self._started = False

    def __enter__(self) -> StagedOutput:
        import pyogrio

        # The staging file is renamed only once complete: no need to sync every chunk.
        self._sync = pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS")
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})
        return self

    def __exit__(self, *exc: object) -> None:
        import pyogrio

        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": self._sync})
        for journal in self.staging.parent.glob(f"{self.staging.name}-*"):
            journal.unlink(missing_ok=True)
        self._lease.close()

    def write(self, frame: gpd.GeoDataFrame) -> None:
        """Append features."""
        import pyogrio

        from glnet_geo.io.writer import writing

        with writing(self.path):
            pyogrio.write_dataframe(frame, self.staging, layer=self.layer,
                                    driver=STAGING.driver, geometry_type=self.geometry_type,
                                    append=self._started,
                                    promote_to_multi=self.geometry_type == "MultiPolygon")
        self._started = True
        self.count += len(frame)

    def publish(self, overwrite: bool, styles: Sequence[ClassStyle] = ()) -> None:
        """Move the features under the final name (converting when needed), styled."""
        from glnet_geo.io.writer import writing

        home = self.fmt.record.styles
        if styles and home is StyleHome.LAYER_STYLES:
            from glnet_geo.styles import add_layer_style, polygon_qml

            add_layer_style(self.staging, self.layer, polygon_qml(styles))
        with writing(self.path):
            self._publish(overwrite)
        if styles and home is StyleHome.QML:
            write_polygon_qml(self.path, styles)

    def _publish(self, overwrite: bool) -> None:
        record = self.fmt.record
        if record.driver == STAGING.driver:  # the staged file is the output
            self._replace(self.staging, self.path, overwrite)
            return
        target = self.converted
        if record.multi_file:  # written into a folder, then moved part by part
            target.mkdir()
            target = target / f"{self.layer}{record.suffix}"
        writers = {Writer.OGR: self._write_ogr, Writer.GEOPARQUET: self._write_geoparquet}
        writers[record.writer](target)
        if not record.multi_file:
            self._replace(target, self.path, overwrite)
            return
        if overwrite:
            for part in output_files(self.path, self.fmt):
                part.unlink(missing_ok=True)
        for part in sorted(target.parent.iterdir()):
            os.replace(part, self.path.with_suffix(part.suffix))

    @staticmethod
    def _replace(source: Path, target: Path, overwrite: bool) -> None:
        from glnet_geo.io.writer import publish_file

        publish_file(source, target, overwrite)  # refuses an output that appeared meanwhile

    def _write_ogr(self, target: Path) -> None:
        """Stream the staged features into the record's OGR driver, with its options."""
        import pyogrio

        record = self.fmt.record
        with pyogrio.open_arrow(self.staging, use_pyarrow=True) as (meta, reader):
            pyogrio.write_arrow(reader, target, driver=record.driver, layer=self.layer,
                                geometry_name=meta["geometry_name"] or "geometry",
                                geometry_type=self.geometry_type, crs=meta["crs"],
                                layer_options=record.options(record.layer_options),
                                dataset_options=record.options(record.dataset_options))

    def _write_geoparquet(self, target: Path) -> None:
        """Stream the staged features into GeoParquet 1.1 (WKB geometry column)."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        import pyogrio
        import pyproj

        types = [self.geometry_type]
        geo = {"version": "1.1.0", "primary_column": "geometry",
               "columns": {"geometry": {
                   "encoding": "WKB", "geometry_types": types,
                   "crs": pyproj.CRS.from_wkt(self.crs.to_wkt()).to_json_dict()}}}
        with pyogrio.open_arrow(self.staging, use_pyarrow=True) as (meta, reader):
            names = [("geometry" if n == meta["geometry_name"] else n)
                     for n in reader.schema.names]
            fields = [pa.field(n, pa.binary()) if n == "geometry" else reader.schema.field(n)
                      for n in names]
            schema = pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})
            with pq.ParquetWriter(target, schema) as writer:
                for batch in reader:
                    columns = [c.cast(pa.binary()) if n == "geometry" else c
                               for n, c in zip(names, batch.columns, strict=True)]
                    writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))


def write_polygon_qml(output_path: Path, styles: Sequence[ClassStyle]) -> None:
    """Write the polygons' QGIS style beside them, unless a raster's style is there."""
    from glnet_geo.styles import polygon_qml, qml_path, write_text

    path = qml_path(output_path)
    if path.exists() and "<rasterrenderer" in path.read_text(encoding="utf-8",
                                                             errors="replace"):
        log.warning("%s styles the class raster of the same base name; the polygons' style "
                    "is not written (name the polygons differently to get one)", path)
        return
    write_text(path, polygon_qml(styles))
