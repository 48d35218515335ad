"""The regular expressions of a dataset's item schema (`pattern`, `patternProperties`), matched with a time
limit.

A schema's author chooses its patterns and a pusher the strings they are matched against, and some patterns
take exponential time on some strings (`^(a|aa)+$` against sixty `a`s and a `b`). Python's `re` has no time
limit and holds the GIL for the whole match, so one such push stopped its server process. These keywords match
with the `regex` package instead: the same syntax as `re`, a time limit per match, and the GIL released while
it runs (the check runs on a worker thread for all but small pushes). A match past the limit refuses the push.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import regex
from jsonschema.exceptions import ValidationError

PATTERN_SECONDS = 0.1  # the most one pattern may take over one string
# When the check of the push under way must end: many strings each just under the limit add up too.
_deadline: ContextVar[float] = ContextVar("satchel_pattern_deadline", default=math.inf)


class PatternTooSlow(Exception):
    """A pattern took longer than PATTERN_SECONDS over one string of an item."""

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.pattern = pattern


class CheckTooSlow(Exception):
    """The check of one push ran past the time it was given."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """The matches made inside (on this thread or task) end by then, or raise CheckTooSlow."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def out_of_time() -> bool:
    return time.monotonic() >= _deadline.get()


def search(pattern: str, text: str) -> bool:
    """Whether the pattern matches somewhere in the text (JSON Schema patterns are not anchored)."""
    left = _deadline.get() - time.monotonic()
    if left <= 0:
        raise CheckTooSlow
    try:
        return _compiled(pattern).search(text, timeout=min(PATTERN_SECONDS, left)) is not None
    except TimeoutError:
        raise (PatternTooSlow(pattern) if left > PATTERN_SECONDS else CheckTooSlow()) from None


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


def uncompilable(fields: Any) -> str | None:
    """The first pattern of a schema `regex` cannot compile, with why; None when all compile."""
    patterns = [p for p in entries(fields, "pattern") if isinstance(p, str)]
    patterns += [
        name for names in entries(fields, "patternProperties") if isinstance(names, dict) for name in names
    ]
    for pattern in patterns:
        try:
            _compiled(pattern)
        except (regex.error, ArithmeticError, ValueError, RecursionError) as error:
            return f"{pattern[:80]!r}: {error}"
    return None


def additional(schema: Any, instance: Any) -> list[str]:
    """The properties of an object that neither `properties` nor `patternProperties` of its schema names."""
    if not isinstance(schema, dict) or not isinstance(instance, dict):
        return []
    named = schema.get("properties") or {}
    patterns = list(schema.get("patternProperties") or {})
    return [name for name in instance if name not in named and not any(search(p, name) for p in patterns)]


# --- the keywords, as jsonschema calls them (validator, the keyword's value, the instance, the schema). The
# validator is jsonschema's own class, whose `descend` its protocol does not declare.


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if search(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = additional(schema, instance)
    if validator.is_type(extra, "object"):
        for name in extras:
            yield from validator.descend(instance[name], extra, path=name)
    elif extra is False and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, extras))})")


KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


def entries(schema: Any, key: str) -> Iterator[Any]:
    """The value under `key` in every object of a schema, however deep."""
    if isinstance(schema, dict):
        if key in schema:
            yield schema[key]
        for value in schema.values():
            yield from entries(value, key)
    elif isinstance(schema, list):
        for value in schema:
            yield from entries(value, key)
