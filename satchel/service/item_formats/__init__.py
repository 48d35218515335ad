"""Dataset items written out in each format of the API, a page of rows at a time.

An export never holds more than one page of rows (and, for the table formats, the set of column names): the
rows are read a page at a time, each page transformed (transform.py) and written (text.py, tables.py) on a
worker thread, and its bytes sent before the next page is read. The table formats read the rows twice, first
for their columns. XLSX goes through a temporary file, since a workbook is a ZIP archive that ends with its
directory; it is written row by row and streamed once finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from satchel.service.item_formats.tables import Columns, CsvWriter, HtmlWriter, TableWriter, XlsxWriter
from satchel.service.item_formats.text import JsonlWriter, JsonWriter, RssWriter, Writer, XmlWriter
from satchel.service.item_formats.transform import ItemQuery, is_clean, names

T = TypeVar("T")
OFF_LOOP_ROWS = 50  # pages of this many rows or more are transformed and written on a worker thread


class Format(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    XLSX = "xlsx"
    HTML = "html"
    XML = "xml"
    RSS = "rss"


MEDIA_TYPES = {
    Format.JSON: "application/json; charset=utf-8",
    Format.JSONL: "application/jsonl; charset=utf-8",
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.HTML: "text/html; charset=utf-8",
    Format.XML: "application/xml; charset=utf-8",
    Format.RSS: "application/rss+xml; charset=utf-8",
}
BOM = "\ufeff".encode()


@dataclass(frozen=True, slots=True)
class ExportOptions:
    format: Format = Format.JSON
    bom: bool | None = None  # None: the format's default (on for CSV only)
    delimiter: str = ","
    skip_header_row: bool = False
    xml_root: str = "items"
    xml_row: str = "item"
    title: str = ""  # the dataset's name or id, for HTML and RSS
    link: str = ""  # the dataset's items URL, for RSS

    @property
    def with_bom(self) -> bool:
        if self.format is Format.XLSX:
            return False
        return self.bom if self.bom is not None else self.format is Format.CSV


def writer_for(query: ItemQuery, options: ExportOptions) -> Writer:
    match options.format:
        case Format.JSON:
            return JsonWriter(query)
        case Format.JSONL:
            return JsonlWriter(query)
        case Format.CSV:
            return CsvWriter(query, delimiter=options.delimiter, header=not options.skip_header_row)
        case Format.XLSX:
            return XlsxWriter(query)
        case Format.HTML:
            return HtmlWriter(query, title=options.title)
        case Format.XML:
            return XmlWriter(query, root=options.xml_root, row=options.xml_row)
        case Format.RSS:
            return RssWriter(query, row=options.xml_row, title=options.title, link=options.link)


Pages = Callable[[], AsyncIterator[list[bytes]]]


async def export(pages: Pages, query: ItemQuery, options: ExportOptions) -> AsyncIterator[bytes]:
    """The items of `pages` (a fresh pass over the rows each call) in the format, as chunks of bytes."""
    writer = await asyncio.to_thread(writer_for, query, options)  # XLSX makes a temporary file
    try:
        if isinstance(writer, TableWriter):
            columns = Columns(query)
            async for rows in pages():
                await _run(columns.add, rows)
            writer.set_columns(columns.names())
        head = await asyncio.to_thread(writer.head)
        if options.with_bom or head:
            yield (BOM if options.with_bom else b"") + head
        async for rows in pages():
            chunk = await _run(writer.page, rows)
            if chunk:
                yield chunk
        tail = writer.tail()
        while (piece := await asyncio.to_thread(_next, tail)) is not None:
            if piece:
                yield piece
    finally:
        writer.close()


async def _run(work: Callable[[list[bytes]], T], rows: list[bytes]) -> T:
    if len(rows) >= OFF_LOOP_ROWS:
        return await asyncio.to_thread(work, rows)
    return work(rows)


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


__all__ = ["MEDIA_TYPES", "ExportOptions", "Format", "ItemQuery", "export", "is_clean", "names"]
