"""The vector formats polygons are written in: one record per format.

Each :class:`VectorFormat` member carries a :class:`FormatRecord`, which says
everything the rest of the package needs about its format: the OGR driver,
the file suffixes, the names accepted by ``--format``, the driver's layer and
dataset options, the CRS the format mandates, the files one output occupies
and where the QGIS style goes. Adding a format is one member here plus its
case in the round-trip test (``tests/vectorize/test_formats.py``); the
writer (:mod:`glnet_geo.vectorize.output`), the checks below and the command
line's help (:func:`describe`) read the records.

This module imports nothing heavy, so the command line can build its help
from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from glnet_geo.errors import InputError, OutputError


class Writer(Enum):
    """How the features, staged in a GeoPackage, become the output."""

    OGR = "ogr"
    """Streamed through Arrow record batches into the record's OGR driver (a GeoPackage
    output is the staged file itself, renamed)."""
    GEOPARQUET = "geoparquet"
    """Written by pyarrow as GeoParquet 1.1 (WKB geometries): GDAL's Parquet driver is an
    optional part of GDAL builds."""


class StyleHome(Enum):
    """Where the polygons' QGIS style (categorised on ``class_name``) is written."""

    LAYER_STYLES = "layer_styles"
    """Inside the file: the default row of the GeoPackage's ``layer_styles`` table."""
    QML = "qml"
    """A QGIS ``.qml`` of the same base name beside the output."""


@dataclass(frozen=True)
class FormatRecord:
    """What glnet-geo knows about one vector format."""

    name: str
    """The ``--format`` name (and the :class:`VectorFormat` value)."""
    title: str
    """The format's usual name, for messages and help."""
    driver: str | None
    """The OGR driver writing it; None where pyarrow does (:attr:`Writer.GEOPARQUET`)."""
    suffixes: tuple[str, ...]
    """File extensions (lower case, with the dot) that select it; the first is canonical."""
    aliases: tuple[str, ...] = ()
    """Other names ``--format`` accepts (case-insensitive)."""
    layer_options: tuple[str, ...] = ()
    """The driver's layer creation options, ``NAME=VALUE`` (as ``ogr2ogr -lco``)."""
    dataset_options: tuple[str, ...] = ()
    """The driver's dataset creation options, ``NAME=VALUE`` (as ``ogr2ogr -dsco``)."""
    crs: str | None = None
    """The CRS the format mandates (the driver reprojects into it, see the options), or
    None: the class raster's CRS."""
    parts: tuple[str, ...] = ()
    """Suffixes of the other files that make up one output, replaced and removed together
    (empty: one file)."""
    styles: StyleHome = StyleHome.QML
    """Where the QGIS style goes."""
    writer: Writer = Writer.OGR
    """How the output is written."""

    def __post_init__(self) -> None:
        if not self.suffixes or any(s != s.lower() or not s.startswith(".")
                                    for s in (*self.suffixes, *self.parts)):
            raise ValueError(f"{self.name}: suffixes are lower case and start with a dot")
        if (self.writer is Writer.OGR) != (self.driver is not None):
            raise ValueError(f"{self.name}: an OGR driver exactly when written through OGR")
        if self.styles is StyleHome.LAYER_STYLES and self.driver != "GPKG":
            raise ValueError(f"{self.name}: only a GeoPackage holds a layer_styles table")

    @property
    def suffix(self) -> str:
        """The canonical extension."""
        return self.suffixes[0]

    @property
    def multi_file(self) -> bool:
        """Whether one output is several files (a shapefile's parts)."""
        return bool(self.parts)

    @staticmethod
    def options(pairs: tuple[str, ...]) -> dict[str, str] | None:
        """``NAME=VALUE`` pairs as the dict pyogrio takes (None when there are none)."""
        return dict(p.split("=", 1) for p in pairs) or None


class VectorFormat(Enum):
    """Output formats, chosen by the output's extension or explicitly.

    Each member's :attr:`record` describes it; its value is the record's name.
    """

    GPKG = FormatRecord(
        name="gpkg", title="GeoPackage", driver="GPKG", suffixes=(".gpkg",),
        aliases=("geopackage",), styles=StyleHome.LAYER_STYLES)
    GEOJSON = FormatRecord(
        name="geojson", title="GeoJSON", driver="GeoJSON", suffixes=(".geojson", ".json"),
        aliases=("json",), layer_options=("RFC7946=YES",), crs="EPSG:4326")
    SHAPEFILE = FormatRecord(
        name="shapefile", title="Shapefile", driver="ESRI Shapefile", suffixes=(".shp",),
        aliases=("shp", "esri shapefile"),
        parts=(".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qpj"))
    FLATGEOBUF = FormatRecord(
        name="flatgeobuf", title="FlatGeobuf", driver="FlatGeobuf", suffixes=(".fgb",),
        aliases=("fgb",))
    GEOPARQUET = FormatRecord(
        name="geoparquet", title="GeoParquet", driver=None,
        suffixes=(".parquet", ".geoparquet"), aliases=("parquet",), writer=Writer.GEOPARQUET)

    def __new__(cls, record: FormatRecord) -> VectorFormat:
        """Make the member of ``record``; its value is the record's name."""
        member = object.__new__(cls)
        member._value_ = record.name
        member.record = record
        return member

    record: FormatRecord

    @property
    def driver(self) -> str | None:
        """The OGR driver writing this format (GeoParquet is written with pyarrow)."""
        return self.record.driver

    @property
    def suffix(self) -> str:
        """The usual file extension."""
        return self.record.suffix

    @classmethod
    def parse(cls, value: str | VectorFormat) -> VectorFormat:
        """Look up the format named ``value`` (case-insensitive; aliases "shp", "fgb"...).

        Raises:
            InputError: the name is unknown.

        """
        if isinstance(value, VectorFormat):
            return value
        name = str(value).strip().lower()
        for fmt in cls:
            if name == fmt.value or name in fmt.record.aliases:
                return fmt
        raise InputError(f"unknown polygon format {value!r}; expected one of "
                         f"{', '.join(f.value for f in cls)}")

    @classmethod
    def from_path(cls, path: Path) -> VectorFormat:
        """Tell the format of ``path`` by its extension (GeoPackage when it has none).

        Raises:
            InputError: the extension is not one of a known format.

        """
        suffix = Path(path).suffix.lower()
        if not suffix:
            return cls.GPKG
        for fmt in cls:
            if suffix in fmt.record.suffixes:
                return fmt
        known = sorted(s for f in cls for s in f.record.suffixes)
        raise InputError(
            f"cannot tell the polygon format of {Path(path).name!r} from {suffix!r}; name the "
            f"file with one of {', '.join(known)}")


def describe(names: bool = True) -> str:
    """List the formats for help texts, from the records.

    Args:
        names: with the ``--format`` names ("gpkg (.gpkg)"); else the canonical
            suffixes alone (".gpkg").

    """
    if not names:
        return ", ".join(f.suffix for f in VectorFormat)
    items = []
    for fmt in VectorFormat:
        record = fmt.record
        note = f"; {record.crs}" if record.crs else ""
        items.append(f"{fmt.value} ({', '.join(record.suffixes)}{note})")
    return " | ".join(items)


def resolve_format(path: str | os.PathLike, format: str | VectorFormat | None = None
                   ) -> VectorFormat:
    """Pick the output format: ``format`` when given, else the extension of ``path``.

    Raises:
        InputError: unknown format name or extension.

    """
    if format is not None:
        return VectorFormat.parse(format)
    return VectorFormat.from_path(Path(path))


def output_files(path: Path, fmt: VectorFormat) -> list[Path]:
    """List the files an output occupies (a shapefile is several)."""
    record = fmt.record
    if record.multi_file:
        return [path.with_suffix(s) for s in (record.suffix, *record.parts)]
    return [path]


def check_output(path: str | os.PathLike, fmt: str | VectorFormat,
                 overwrite: bool = False) -> None:
    """Refuse an output that exists (without ``overwrite``) or cannot be written.

    The checks of each file are :func:`glnet_geo.io.writer.check_output`'s; a
    shapefile is refused when any of its parts exists.

    Raises:
        OutputExistsError: a file of the output exists and ``overwrite`` is False.
        OutputError: its directory is missing, not writable, or the path is a directory.

    """
    from glnet_geo.io.writer import check_output as check_file

    path, fmt = Path(path), VectorFormat.parse(fmt)
    if path.is_dir():
        raise OutputError(f"{path} is a directory; give a file name such as "
                          f"{path / ('polygons' + fmt.suffix)}")
    for part in output_files(path, fmt):
        check_file(part, overwrite)
