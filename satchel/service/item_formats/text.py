"""The formats that write items one after another: JSON, JSON Lines, XML and RSS.

Each writer turns a page of stored rows into the bytes of that page, so an export of any size is written a
page at a time. XML and RSS follow the reference's rules: a property becomes an element named after it, an
array repeats the element once per value, the sub-object under `@` becomes the element's attributes and the
value under `#` its text (when it has no child elements). Names that XML does not allow as element or
attribute names have each offending character replaced with `_` (and a leading `_` added where a name may
not start as it does); characters XML 1.0 cannot carry are dropped from text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson

from satchel.service.item_formats.transform import MAX_DEPTH, Item, ItemQuery

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
NOT_IN_NAME = re.compile(r"[^\w.\-]")
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Writer:
    """A format: bytes before the items, the bytes of each page of rows, and the bytes after."""

    def __init__(self, query: ItemQuery) -> None:
        self.query = query

    def head(self) -> bytes:
        return b""

    def page(self, rows: list[bytes]) -> bytes:
        """One page of stored rows, written; may run on a worker thread."""
        return self.items(self.query.rows(rows))

    def items(self, items: list[Item]) -> bytes:
        raise NotImplementedError

    def tail(self) -> Iterator[bytes]:
        yield b""

    def close(self) -> None:
        """Let go of whatever the writer holds (a temporary file); called however the export ends."""


class JsonWriter(Writer):
    """A JSON array with one item per line; stored rows go out as stored when nothing changes them."""

    def __init__(self, query: ItemQuery) -> None:
        super().__init__(query)
        self.first = True

    def head(self) -> bytes:
        return b"["

    def page(self, rows: list[bytes]) -> bytes:
        parts = rows if self.query.identity else [orjson.dumps(item) for item in self.query.rows(rows)]
        if not parts:
            return b""
        lead = b"\n" if self.first else b",\n"
        self.first = False
        return lead + b",\n".join(parts)

    def tail(self) -> Iterator[bytes]:
        yield b"]" if self.first else b"\n]"


class JsonlWriter(Writer):
    def page(self, rows: list[bytes]) -> bytes:
        parts = rows if self.query.identity else [orjson.dumps(item) for item in self.query.rows(rows)]
        return b"".join(part + b"\n" for part in parts)


def xml_name(name: str) -> str:
    cleaned = NOT_IN_NAME.sub("_", name)
    if not cleaned or not (cleaned[0].isalpha() or cleaned[0] == "_"):
        cleaned = "_" + cleaned
    return cleaned


def xml_text(value: Any) -> str:
    if isinstance(value, str):
        return escape(NOT_IN_XML.sub("", value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(orjson.dumps(value).decode())


def element(name: str, value: Any, out: list[str], depth: int = 0) -> None:
    """Append the XML of one property (an array: the element once per value)."""
    if isinstance(value, list):
        for one in value:
            element(name, one, out, depth + 1)
        return
    tag = xml_name(name)
    if value is None or value in ("", {}):
        out.append(f"<{tag}/>")
        return
    if not isinstance(value, dict) or depth > MAX_DEPTH:
        text = xml_text(value) if not isinstance(value, dict) else xml_text(orjson.dumps(value).decode())
        out.append(f"<{tag}>{text}</{tag}>")
        return
    attributes = value.get("@")
    attrs = ""
    if isinstance(attributes, dict):
        attrs = "".join(
            f" {xml_name(k)}={quoteattr(NOT_IN_XML.sub('', v if isinstance(v, str) else xml_text(v)))}"
            for k, v in attributes.items()
        )
    children = [(k, v) for k, v in value.items() if k not in ("@", "#")]
    if not children:
        text = xml_text(value["#"]) if "#" in value and value["#"] is not None else ""
        out.append(f"<{tag}{attrs}>{text}</{tag}>" if text else f"<{tag}{attrs}/>")
        return
    out.append(f"<{tag}{attrs}>")
    for key, inner in children:
        element(key, inner, out, depth + 1)
    out.append(f"</{tag}>")


class XmlWriter(Writer):
    def __init__(self, query: ItemQuery, *, root: str, row: str) -> None:
        super().__init__(query)
        self.root = xml_name(root)
        self.row = row

    def head(self) -> bytes:
        return XML_DECLARATION + f"<{self.root}>\n".encode()

    def items(self, items: list[Item]) -> bytes:
        out: list[str] = []
        for item in items:
            element(self.row, item, out)
            out.append("\n")
        return "".join(out).encode()

    def tail(self) -> Iterator[bytes]:
        yield f"</{self.root}>\n".encode()


class RssWriter(XmlWriter):
    """An RSS 2.0 feed: the dataset as the channel, each item an `<item>` (or xmlRow) of it."""

    def __init__(self, query: ItemQuery, *, row: str, title: str, link: str) -> None:
        super().__init__(query, root="rss", row=row)
        self.title = title
        self.link = link

    def head(self) -> bytes:
        channel = f"<title>{xml_text(self.title)}</title><link>{xml_text(self.link)}</link>"
        channel += f"<description>{xml_text(self.title)}</description>"
        return XML_DECLARATION + f'<rss version="2.0"><channel>{channel}\n'.encode()

    def tail(self) -> Iterator[bytes]:
        yield b"</channel></rss>\n"
