"""The table formats: CSV, HTML and XLSX, one row per item and one column per leaf.

Nested values are flattened into columns named by their path joined with `/` (`address/city`, `tags/0`), as
the hosted exports do; an empty object or array is an empty cell of its own column unless other items have
leaves under it, while a value keeps its column beside the leaves other items have under the same name.
Columns are every leaf any item of the read has, so a table takes two passes over the rows: the first only
collects the column names (Columns), the second writes. Their order: grouped by top-level field, the fields
in the order they first appear (those named in `fields` first, in that order, each a column even if no item
has it), and within a field the order its leaves first appear. At most MAX_COLUMNS columns; leaves past that
are left out.

Cells: text as it is, numbers as JSON writes them, booleans as true/false, null and empty containers empty.
XLSX is written by XlsxWriter in its constant-memory mode (each row flushed to disk as it is written) into a
temporary file that is then streamed and deleted; text is always written as text (never as a formula or a
link), and rows past Excel's 1,048,576 are left out.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterator
from html import escape
from typing import Any

import orjson

from satchel.service.item_formats.text import Writer
from satchel.service.item_formats.transform import Item, ItemQuery, leaves

MAX_COLUMNS = 2000
EMPTY: tuple[Any, ...] = ({}, [])
XLSX_ROWS = 1_048_576
FILE_CHUNK = 256 * 1024


def leaf_cells(item: Item) -> Iterator[tuple[str, str, Any]]:
    """(top-level field, column, value) of each leaf of an item."""
    for key, value in item.items():
        flat: dict[str, Any] = {}
        leaves(key, value, "/", flat)
        for column, leaf in flat.items():
            yield key, column, leaf


class Columns:
    """The columns of a table, collected from every item of the read (the first pass)."""

    def __init__(self, query: ItemQuery) -> None:
        self.query = query
        self.groups: dict[str, dict[str, None]] = {name: {} for name in query.fields}
        # Named fields that are flattened: their dotted leaves take their column's place, as in JSON.
        self.flattened = tuple(f"{name}." for name in query.flatten if name in self.groups)
        self.count = 0
        self.valued: set[str] = set()  # columns some item has a value in (not null, not an empty container)

    def add(self, rows: list[bytes]) -> None:
        for item in self.query.rows(rows):
            for key, column, value in leaf_cells(item):
                group = self.groups.get(key)
                if group is None:
                    owner = next((p for p in self.flattened if key.startswith(p)), None)
                    group = self.groups[owner[:-1]] if owner else self.groups.setdefault(key, {})
                if column not in group:
                    if self.count >= MAX_COLUMNS:
                        continue
                    group[column] = None
                    self.count += 1
                if value is not None and value not in EMPTY:
                    self.valued.add(column)

    def names(self) -> list[str]:
        out: list[str] = []
        for key, group in self.groups.items():
            if not group:
                out.append(key)
                continue
            # An empty object or array is a column only where no item has leaves under it; a value is always
            # one (`price` beside `price/amount` when items disagree on its shape).
            parents: set[str] = set()
            for column in group:
                parts = column.split("/")
                parents.update("/".join(parts[:end]) for end in range(1, len(parts)))
            out.extend(column for column in group if column not in parents or column in self.valued)
        return out[:MAX_COLUMNS]


def cell(value: Any) -> str:
    if value is None or value in EMPTY:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode()


class TableWriter(Writer):
    """A table format; its columns are given once the first pass has found them."""

    columns: list[str]

    def set_columns(self, columns: list[str]) -> None:
        self.columns = columns

    def cells(self, items: list[Item]) -> list[list[Any]]:
        rows = []
        for item in items:
            values = {column: value for _, column, value in leaf_cells(item)}
            rows.append([values.get(column) for column in self.columns])
        return rows


class CsvWriter(TableWriter):
    def __init__(self, query: ItemQuery, *, delimiter: str, header: bool) -> None:
        super().__init__(query)
        self.delimiter = delimiter
        self.header = header

    def _csv(self, rows: list[list[str]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.delimiter).writerows(rows)
        return buffer.getvalue().encode()

    def head(self) -> bytes:
        # No columns (no items, or none with a field) is no header row either, not an empty line.
        return self._csv([self.columns]) if self.header and self.columns else b""

    def items(self, items: list[Item]) -> bytes:
        return self._csv([[cell(v) for v in row] for row in self.cells(items)])


class HtmlWriter(TableWriter):
    def __init__(self, query: ItemQuery, *, title: str) -> None:
        super().__init__(query)
        self.title = title

    def head(self) -> bytes:
        header = "".join(f"<th>{escape(column)}</th>" for column in self.columns)
        return (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{escape(self.title)}</title></head>'
            f"<body><table>\n<tr>{header}</tr>\n"
        ).encode()

    def items(self, items: list[Item]) -> bytes:
        lines = []
        for row in self.cells(items):
            lines.append("<tr>" + "".join(f"<td>{escape(cell(v))}</td>" for v in row) + "</tr>\n")
        return "".join(lines).encode()

    def tail(self) -> Iterator[bytes]:
        yield b"</table></body></html>\n"


class XlsxWriter(TableWriter):
    def __init__(self, query: ItemQuery) -> None:
        super().__init__(query)
        handle, self.path = tempfile.mkstemp(prefix="satchel-items-", suffix=".xlsx")
        os.close(handle)
        import xlsxwriter  # noqa: PLC0415 - when an export asks for it: 0.05 s of every process start otherwise

        self.workbook = xlsxwriter.Workbook(
            self.path,
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        self.sheet = self.workbook.add_worksheet()
        self.row = 0

    def head(self) -> bytes:
        for col, name in enumerate(self.columns):
            self.sheet.write_string(0, col, name)
        self.row = 1
        return b""

    def items(self, items: list[Item]) -> bytes:
        for values in self.cells(items):
            if self.row >= XLSX_ROWS:
                break
            for col, value in enumerate(values):
                self._write(col, value)
            self.row += 1
        return b""

    def _write(self, col: int, value: Any) -> None:
        if value is None or value in EMPTY:
            return
        if isinstance(value, bool):
            self.sheet.write_boolean(self.row, col, value)
        elif isinstance(value, int | float):
            self.sheet.write_number(self.row, col, value)
        else:
            self.sheet.write_string(self.row, col, cell(value))

    def tail(self) -> Iterator[bytes]:
        self.workbook.close()
        with open(self.path, "rb") as file:
            while chunk := file.read(FILE_CHUNK):
                yield chunk

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
