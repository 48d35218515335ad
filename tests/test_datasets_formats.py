"""Dataset items in each output format, and the transformations of a read, without a server.

The writers are driven as a read drives them (export() over pages of stored rows); the XLSX is read back with
openpyxl, the XML and RSS with the standard library's parser, the CSV with its csv module.
"""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import orjson
import pytest

from satchel.service.item_formats import ExportOptions, Format, ItemQuery, export, is_clean, names
from satchel.service.item_formats.tables import MAX_COLUMNS

ITEMS: list[dict[str, Any]] = [
    {"name": "Paul", "address": {"city": "Chicago", "zip": 60601}, "tags": ["a", "b"], "#debug": {"t": 1}},
    {"#only": "hidden"},
    {"name": "Ann", "tags": [], "ok": True, "none": None, "n": 1.5},
]


def rows(items: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(item) for item in items]


def run(items: list[dict[str, Any]], query: ItemQuery | None = None, page: int = 2, **options: Any) -> bytes:
    stored = rows(items)

    async def pages() -> AsyncIterator[list[bytes]]:
        for start in range(0, len(stored), page):
            yield stored[start : start + page]

    async def collect() -> bytes:
        out = b""
        async for chunk in export(pages, query or ItemQuery(), ExportOptions(**options)):
            out += chunk
        return out

    return asyncio.run(collect())


# --- transformations


def test_names_split_on_commas_and_drop_blanks() -> None:
    assert names("a, b,,c ") == ("a", "b", "c")
    assert names(None) == ()


def test_clean_means_a_field_that_is_not_hidden() -> None:
    assert is_clean({"a": 1, "#b": 2})
    assert not is_clean({"#b": 2})
    assert not is_clean({})


def test_fields_keep_their_order_and_omit_drops() -> None:
    item = {"a": 1, "b": 2, "c": 3}
    assert list(ItemQuery(fields=("c", "a", "missing")).apply(item)[0]) == ["c", "a"]
    assert ItemQuery(omit=("b",)).apply(item) == [{"a": 1, "c": 3}]


def test_unwind_arrays_objects_and_what_cannot_be_unwound() -> None:
    query = ItemQuery(unwind=("arr",))
    assert query.apply({"k": 1, "arr": [{"x": 1}, {"x": 2, "k": 9}, 5]}) == [
        {"k": 1, "x": 1},
        {"k": 9, "x": 2},
        {"k": 1, "arr": 5},
    ]
    assert query.apply({"k": 1, "arr": {"x": 1}}) == [{"k": 1, "x": 1}]
    for kept in ({"k": 1}, {"k": 1, "arr": 3}, {"k": 1, "arr": []}):
        assert query.apply(kept) == [kept]
    # In the order given: the first unwind's output is unwound by the second.
    both = ItemQuery(unwind=("a", "b")).apply({"a": [{"b": [1, 2]}, {"b": [3]}]})
    assert both == [{"b": 1}, {"b": 2}, {"b": 3}]


def test_flatten_replaces_a_field_with_its_dotted_leaves_in_place() -> None:
    item = {"first": 0, "foo": {"bar": "hello", "list": [1, {"z": 2}]}, "last": 9}
    flat = ItemQuery(flatten=("foo",)).apply(item)[0]
    assert list(flat) == ["first", "foo.bar", "foo.list.0", "foo.list.1.z", "last"]
    assert flat["foo.bar"] == "hello"


def test_hidden_empty_and_failed_pages() -> None:
    assert ItemQuery(skip_hidden=True).apply({"a": 1, "#b": 2}) == [{"a": 1}]
    assert ItemQuery(skip_hidden=True, skip_empty=True).apply({"#b": 2}) == []
    assert ItemQuery(skip_empty=True).apply({"#b": 2}) == [{"#b": 2}]
    assert ItemQuery(skip_failed_pages=True).apply({"errorInfo": "boom"}) == []
    assert ItemQuery(skip_failed_pages=True).apply({"errorInfo": None, "a": 1}) == [
        {"errorInfo": None, "a": 1}
    ]


# --- text formats


def test_json_is_an_array_written_a_page_at_a_time() -> None:
    for page in (1, 2, 10):
        assert orjson.loads(run(ITEMS, page=page)) == ITEMS
    assert orjson.loads(run([])) == []
    assert orjson.loads(run(ITEMS, ItemQuery(skip_hidden=True, skip_empty=True), page=1)) == [
        {"name": "Paul", "address": {"city": "Chicago", "zip": 60601}, "tags": ["a", "b"]},
        {"name": "Ann", "tags": [], "ok": True, "none": None, "n": 1.5},
    ]


def test_jsonl_is_one_item_per_line() -> None:
    out = run(ITEMS, format=Format.JSONL)
    assert [orjson.loads(line) for line in out.splitlines()] == ITEMS
    assert out.endswith(b"\n")


def test_bom_only_for_csv_unless_asked() -> None:
    assert run(ITEMS, format=Format.CSV).startswith(b"\xef\xbb\xbf")
    assert not run(ITEMS, format=Format.CSV, bom=False).startswith(b"\xef\xbb\xbf")
    assert not run(ITEMS).startswith(b"\xef\xbb\xbf")
    assert run(ITEMS, bom=True).startswith(b"\xef\xbb\xbf[")


def test_xml_follows_the_reference_rules() -> None:
    items: list[dict[str, Any]] = [
        {"name": "Paul Newman", "address": [{"type": "home", "city": "Chicago"}, {"street": None}]},
        {"address": [{"@": {"type": "home"}, "street": "21st"}, {"@": {"type": "office"}, "#": "unknown"}]},
        {"bad name": "<&>", "1st": 1, "#hidden": True},
    ]
    out = run(items, format=Format.XML, xml_root="r", xml_row="row")
    root = ET.fromstring(out)
    assert root.tag == "r"
    first, second, third = list(root)
    assert first.tag == "row"
    assert first.findtext("name") == "Paul Newman"
    addresses = first.findall("address")
    assert [a.findtext("city") for a in addresses] == ["Chicago", None]
    assert addresses[1].find("street") is not None
    home, office = second.findall("address")
    assert home.get("type") == "home"
    assert home.findtext("street") == "21st"
    assert office.get("type") == "office"
    assert office.text == "unknown"
    assert third.findtext("bad_name") == "<&>"
    assert third.findtext("_1st") == "1"
    assert third.findtext("_hidden") == "true"


def test_xml_drops_characters_xml_cannot_carry() -> None:
    root = ET.fromstring(run([{"a": "x\x00\x07y"}], format=Format.XML))
    assert root[0].findtext("a") == "xy"


def test_rss_is_a_channel_of_items() -> None:
    out = run(ITEMS, format=Format.RSS, title="my-data", link="http://x/items")
    root = ET.fromstring(out)
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "my-data"
    assert channel.findtext("link") == "http://x/items"
    assert len(channel.findall("item")) == 3


# --- tables


def test_csv_flattens_nested_values_into_slash_columns() -> None:
    out = run(ITEMS, format=Format.CSV, bom=False)
    table = list(csv.reader(io.StringIO(out.decode())))
    assert table[0] == [
        "name", "address/city", "address/zip", "tags/0", "tags/1", "#debug/t", "#only", "ok", "none", "n",
    ]  # fmt: skip
    assert table[1] == ["Paul", "Chicago", "60601", "a", "b", "1", "", "", "", ""]
    assert table[2] == ["", "", "", "", "", "", "hidden", "", "", ""]
    assert table[3] == ["Ann", "", "", "", "", "", "", "true", "", "1.5"]


def test_a_value_keeps_its_column_beside_other_items_leaves_under_its_name() -> None:
    items: list[dict[str, Any]] = [
        {"url": "u1", "price": "N/A", "arr": [1, 2]},
        {"url": "u2", "price": {"amount": 10, "cur": "EUR"}, "arr": [{"x": 1}]},
        {"url": "u3", "price": {}, "arr": None},
    ]
    out = run(items, format=Format.CSV, bom=False)
    table = list(csv.reader(io.StringIO(out.decode())))
    assert table == [
        ["url", "price", "price/amount", "price/cur", "arr/0", "arr/1", "arr/0/x"],
        ["u1", "N/A", "", "", "1", "2", ""],
        ["u2", "", "10", "EUR", "", "", "1"],
        ["u3", "", "", "", "", "", ""],
    ]


def test_csv_delimiter_header_row_and_fields_fixing_the_columns() -> None:
    out = run(ITEMS, ItemQuery(fields=("ok", "name", "absent")), format=Format.CSV, bom=False, delimiter=";")
    assert out.decode().splitlines() == ["ok;name;absent", ";Paul;", ";;", "true;Ann;"]
    out = run(ITEMS, format=Format.CSV, bom=False, skip_header_row=True)
    assert out.decode().splitlines()[0].startswith("Paul,Chicago")


def test_a_named_and_flattened_field_has_its_leaves_in_its_place() -> None:
    """With `fields` and `flatten` on one field (a view's transformation does both), the table's columns are
    the JSON rows' keys in their order: the field's dotted leaves where it stood, not the field itself too."""
    items = [{"a": 1, "b": {"c": 2, "d": 3}, "z": 3}, {"a": 4, "b": "plain"}]
    query = ItemQuery(fields=("b", "a"), flatten=("b",))
    assert [list(query.apply(item)[0]) for item in items] == [["b.c", "b.d", "a"], ["b", "a"]]
    out = run(items, query, format=Format.CSV, bom=False)
    assert list(csv.reader(io.StringIO(out.decode()))) == [
        ["b.c", "b.d", "b", "a"],
        ["2", "3", "", "1"],
        ["", "", "plain", "4"],
    ]


def test_csv_quotes_what_needs_quoting() -> None:
    out = run([{"a": 'say "hi", then\nleave'}], format=Format.CSV, bom=False)
    assert list(csv.reader(io.StringIO(out.decode()))) == [["a"], ['say "hi", then\nleave']]


def test_columns_are_capped() -> None:
    wide = [{f"c{i}": i for i in range(MAX_COLUMNS + 10)}]
    header = run(wide, format=Format.CSV, bom=False).decode().splitlines()[0]
    assert len(header.split(",")) == MAX_COLUMNS


def test_html_is_an_escaped_table() -> None:
    out = run([{"a": "<script>x</script>", "b": 1}], format=Format.HTML, title="t<").decode()
    assert "<script>" not in out
    assert "&lt;script&gt;x&lt;/script&gt;" in out
    assert "<th>a</th><th>b</th>" in out
    assert "<title>t&lt;</title>" in out


def test_xlsx_reads_back_with_types_and_never_a_formula() -> None:
    items = [*ITEMS, {"name": "=1+1", "n": 10**19}]
    out = run(items, format=Format.XLSX, page=1)
    sheet = openpyxl.load_workbook(io.BytesIO(out)).active
    assert sheet is not None
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert table[0][:3] == ["name", "address/city", "address/zip"]
    assert table[1][:5] == ["Paul", "Chicago", 60601, "a", "b"]
    ok = table[0].index("ok")
    assert table[3][ok] is True
    assert table[3][table[0].index("n")] == 1.5
    assert table[4][0] == "=1+1"  # text, as stored: never evaluated
    assert len(table) == 5


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_of_no_items(fmt: Format) -> None:
    out = run([], format=fmt)
    if fmt is Format.XLSX:
        assert out.startswith(b"PK")
    elif fmt is Format.JSON:
        assert orjson.loads(out) == []
    elif fmt is Format.CSV:
        assert out == "\ufeff".encode()  # the BOM, on by default for CSV, and no empty header line
        assert run([], format=fmt, bom=False) == b""
