"""What a read of dataset items does to each stored item before it is written out.

Applied per stored item (a row), in this order:
1. skipFailedPages drops a row with a truthy `errorInfo` (the legacy Crawler's failed pages);
2. skipHidden (or clean) drops the top-level fields that start with `#`;
3. fields keeps only those fields, in the order given (a field the item lacks is left out);
4. omit drops fields;
5. unwind, field by field in the order given: an object is merged into the item (its fields win over the
   item's on a clash); a non-empty array makes one item per element, each object element merged the same way
   and any other element put back under the field's name; a missing, scalar or empty value leaves the item as
   it is. So one row may give several items, and pagination still counts rows;
6. flatten replaces each named field holding an object or array with its leaves, joined by dots
   (`{"foo": {"bar": 1, "baz": [2]}}` gives `foo.bar` and `foo.baz.0`), in place;
7. skipEmpty (or clean) drops the items left with no field at all.

`simplified` is the legacy shortcut for fields=url,pageFunctionResult,errorInfo and unwind=pageFunctionResult.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

Item = dict[str, Any]
MAX_DEPTH = 64  # deeper values are written as JSON text by whatever flattens or renders them
SIMPLIFIED_FIELDS = ("url", "pageFunctionResult", "errorInfo")
SIMPLIFIED_UNWIND = ("pageFunctionResult",)


def names(value: str | None) -> tuple[str, ...]:
    """A comma-joined list parameter as its non-empty names, in order."""
    return tuple(name for part in (value or "").split(",") if (name := part.strip()))


@dataclass(frozen=True, slots=True)
class ItemQuery:
    fields: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()
    unwind: tuple[str, ...] = ()
    flatten: tuple[str, ...] = ()
    skip_hidden: bool = False
    skip_empty: bool = False
    skip_failed_pages: bool = False

    @property
    def identity(self) -> bool:
        """Whether every stored item comes out exactly as stored (so it need not even be parsed)."""
        return not (
            self.fields or self.omit or self.unwind or self.flatten
            or self.skip_hidden or self.skip_empty or self.skip_failed_pages
        )  # fmt: skip

    def rows(self, rows: Iterable[bytes]) -> list[Item]:
        """The items a page of stored rows gives."""
        out: list[Item] = []
        for row in rows:
            out.extend(self.apply(orjson.loads(row)))
        return out

    def apply(self, item: Item) -> list[Item]:
        if self.skip_failed_pages and item.get("errorInfo"):
            return []
        if self.skip_hidden:
            item = {k: v for k, v in item.items() if not k.startswith("#")}
        if self.fields:
            item = {name: item[name] for name in self.fields if name in item}
        if self.omit:
            item = {k: v for k, v in item.items() if k not in self.omit}
        items = [item]
        for field in self.unwind:
            items = [out for one in items for out in unwind(one, field)]
        if self.flatten:
            items = [flatten_fields(one, self.flatten) for one in items]
        if self.skip_empty:
            items = [one for one in items if one]
        return items


def is_clean(item: Mapping[str, Any]) -> bool:
    """Whether an item has a field that is not hidden (what cleanItemCount counts)."""
    return any(not key.startswith("#") for key in item)


def unwind(item: Item, field: str) -> list[Item]:
    value = item.get(field)
    if isinstance(value, dict):
        rest = {k: v for k, v in item.items() if k != field}
        return [{**rest, **value}]
    if isinstance(value, list) and value:
        rest = {k: v for k, v in item.items() if k != field}
        return [{**rest, **one} if isinstance(one, dict) else {**rest, field: one} for one in value]
    return [item]


def flatten_fields(item: Item, fields: tuple[str, ...]) -> Item:
    """The item with each named field's object or array replaced by its dotted leaves, where it stood."""
    if not any(isinstance(item.get(field), dict | list) for field in fields):
        return item
    out: Item = {}
    for key, value in item.items():
        if key in fields and isinstance(value, dict | list):
            leaves(key, value, ".", out)
        else:
            out[key] = value
    return out


def leaves(prefix: str, value: Any, sep: str, out: dict[str, Any], depth: int = 0) -> None:
    """Every leaf of value under prefix, joined by sep; an empty object or array is a leaf itself."""
    if depth > MAX_DEPTH:
        out[prefix] = orjson.dumps(value).decode()
    elif isinstance(value, dict) and value:
        for key, inner in value.items():
            leaves(f"{prefix}{sep}{key}", inner, sep, out, depth + 1)
    elif isinstance(value, list) and value:
        for index, inner in enumerate(value):
            leaves(f"{prefix}{sep}{index}", inner, sep, out, depth + 1)
    else:
        out[prefix] = value
