"""A dataset's item schema: the JSON Schema (draft-07) under `fields` in the dataset's schema, which every
item pushed must satisfy.

As in the hosted API, a push with any item that fails is refused whole: 400 `schema-validation-error`, with
each failing item's position and its errors in the shape of AJV's (the validator the hosted API uses):
`instancePath`, `schemaPath`, `keyword`, `params` and `message`. The clients surface them as `error.data`.
A dataset without a schema, or whose schema has no `fields`, takes any object.

`format` is an annotation here, not checked (draft-07 leaves it optional, and a check of some formats but not
others would be a surprise). A `$ref` must point inside the schema (`#...`): nothing is fetched. Patterns are
matched with a time limit (item_patterns.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

import orjson
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7

from satchel.errors import InvalidRequest, SchemaInvalid
from satchel.service.item_patterns import (
    KEYWORDS,
    PATTERN_SECONDS,
    CheckTooSlow,
    PatternTooSlow,
    additional,
    entries,
    out_of_time,
    time_limit,
    uncompilable,
)

log = logging.getLogger(__name__)
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
# The most failing items, and errors per item, an answer lists: a 10 MiB push of bad items must not answer
# with a larger document than it sent. The message gives the full count.
MAX_ITEMS_LISTED = 100
MAX_ERRORS_LISTED = 20
# The most checking one push may take: at about 60 us an item, the largest push of small items takes a few
# seconds; past this, patterns that are slow on many strings are what take the time.
CHECK_SECONDS = 30.0
# Draft-07, with the keywords that match patterns replaced by ones with a time limit.
ItemValidator = validators.extend(Draft7Validator, KEYWORDS)  # type: ignore[no-untyped-call]  # untyped in its stubs


def check_fields(schema: dict[str, Any]) -> None:
    """Refuse (400) a dataset schema whose `fields` could not be applied to items."""
    if "fields" not in schema:
        return
    fields = schema["fields"]
    if not isinstance(fields, (dict, bool)):
        raise _bad_fields("it must be a JSON Schema object")
    if isinstance(fields, dict) and fields.get("$schema", DRAFT_07) not in (DRAFT_07, DRAFT_07.rstrip("#")):
        raise _bad_fields(f'its "$schema" must be "{DRAFT_07}" or left out')
    try:
        Draft7Validator.check_schema(fields)
    except SchemaError as error:
        raise _bad_fields(f"{error.message} (at {_pointer(error.absolute_path) or '/'})") from None
    except (ArithmeticError, ValueError, RecursionError) as error:  # a `pattern` Python cannot compile, ...
        raise _bad_fields(f"{type(error).__name__}: {error}") from None
    if (why := uncompilable(fields)) is not None:
        raise _bad_fields(f"the pattern {why}")
    inside = Registry().resolver_with_root(DRAFT7.create_resource(fields))
    for ref in (ref for ref in entries(fields, "$ref") if isinstance(ref, str)):
        if not ref.startswith("#"):
            raise _bad_fields(
                f'"$ref" {ref!r} points outside the schema; only "#..." references are followed'
            )
        try:
            if ref.startswith("#/"):
                inside.lookup(ref)
        except Unresolvable:
            raise _bad_fields(f'"$ref" {ref!r} names nothing in the schema') from None
    try:  # references that lead nowhere, or only to each other, show on any item
        ItemValidator(fields).is_valid({})
    except Unresolvable as error:
        raise _bad_fields(f'"$ref" {_unresolved(error)!r} names nothing in the schema') from None
    except RecursionError:
        raise _bad_fields("its references lead round in a loop") from None


def validator_for(schema_text: str | None) -> Validator | None:
    """The validator of a dataset's items, from the schema stored with it; None when any object goes."""
    return _compiled(schema_text) if schema_text and '"fields"' in schema_text else None


@functools.lru_cache(maxsize=64)
def _compiled(schema_text: str) -> Validator | None:
    schema = orjson.loads(schema_text)
    if not isinstance(schema, dict) or "fields" not in schema:
        return None
    try:
        check_fields(schema)
    except InvalidRequest as refused:
        # Stored before schemas were checked, and unusable: its dataset goes on taking any object, as it did.
        log.warning("a dataset schema's fields are not checked: %s", refused.message)
        return None
    validator: Validator = ItemValidator(schema["fields"])
    return validator


def check_items(validator: Validator, items: Iterable[Any], *, seconds: float = CHECK_SECONDS) -> None:
    """Raise SchemaInvalid naming every item that fails the schema, or return if none does. A check that
    runs past `seconds` is refused (400): many strings each matched just within the patterns' limit add up."""
    invalid: list[dict[str, Any]] = []
    failing = position = 0
    try:
        with time_limit(seconds):
            for position, item in enumerate(items):
                if out_of_time():
                    raise CheckTooSlow
                if len(invalid) >= MAX_ITEMS_LISTED:  # only counted from here: the first error will do
                    failing += next(validator.iter_errors(item), None) is not None
                    continue
                errors = list(validator.iter_errors(item))
                if errors:
                    failing += 1
                    described = [error for found in errors for error in _as_ajv(found)]
                    invalid.append(
                        {"itemPosition": position, "validationErrors": described[:MAX_ERRORS_LISTED]}
                    )
    except UNJUDGED as error:
        raise _unjudged(error, position, seconds) from None
    if failing:
        shown = "" if failing <= MAX_ITEMS_LISTED else f" (the first {MAX_ITEMS_LISTED} are listed)"
        raise SchemaInvalid(
            f"Schema validation failed: {failing} of the items do not match the dataset's schema{shown}.",
            data={"invalidItems": invalid},
        )


# What stops a check before it can judge an item (ArithmeticError, ValueError: numbers past what it computes).
UNJUDGED = (CheckTooSlow, PatternTooSlow, Unresolvable, RecursionError, ArithmeticError, ValueError)


def _unjudged(error: Exception, position: int, seconds: float) -> InvalidRequest:
    """An item the schema cannot judge, as a 400 that says why."""
    if isinstance(error, CheckTooSlow):
        why = (
            f"checking took longer than {seconds:g} s (stopped at the item at position {position});"
            " push fewer items at a time, or simplify the schema's patterns"
        )
    elif isinstance(error, Unresolvable):
        why = f"the dataset's schema refers to {_unresolved(error)!r}, which leads nowhere"
    elif isinstance(error, RecursionError):
        why = f"the item at position {position} nests too deeply to be checked"
    elif isinstance(error, PatternTooSlow):
        why = (
            f"the pattern {error.pattern[:80]!r} took longer than {PATTERN_SECONDS} s over a string of the"
            f" item at position {position}; simplify the pattern"
        )
    else:
        why = f"the item at position {position} cannot be checked: {error}"
    return InvalidRequest(
        f"The items cannot be checked against the dataset's schema: {why}.", type="invalid-value"
    )


def _as_ajv(error: ValidationError) -> list[dict[str, Any]]:
    """One jsonschema error as AJV reports it (a missing or extra property is one error each in AJV)."""
    where = _pointer(error.absolute_path)
    schema_path = "#" + _pointer(error.absolute_schema_path)
    if error.validator is None:  # the schema there is `false`: nothing matches it
        return [_ajv(where, schema_path + "/false schema", "false schema", {}, "boolean schema is false")]
    keyword = str(error.validator)
    value: Any = error.validator_value
    if keyword == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [name for name in value if name not in instance]
        named = next((name for name in missing if error.message.startswith(repr(name))), None)
        return [
            _ajv(
                where,
                schema_path,
                keyword,
                {"missingProperty": named},
                f"must have required property '{named}'",
            )
        ]
    if keyword == "additionalProperties":
        return [
            _ajv(
                where,
                schema_path,
                keyword,
                {"additionalProperty": name},
                "must NOT have additional properties",
            )
            for name in additional(error.schema, error.instance)
        ]
    params, message = _described(keyword, value)
    return [_ajv(where, schema_path, keyword, params, message or error.message)]


def _described(keyword: str, value: Any) -> tuple[dict[str, Any], str | None]:
    """AJV's params and message for a keyword (None: jsonschema's own message is used)."""
    if keyword == "type":
        shown = ",".join(value) if isinstance(value, list) else value
        return {"type": shown}, f"must be {shown}"
    if keyword in COMPARISONS:
        comparison = COMPARISONS[keyword]
        return {"comparison": comparison, "limit": value}, f"must be {comparison} {value}"
    if keyword in COUNTS:
        more_or_fewer, what = COUNTS[keyword]
        return {"limit": value}, f"must NOT have {more_or_fewer} than {value} {what}"
    if keyword == "enum":
        return {"allowedValues": value}, "must be equal to one of the allowed values"
    if keyword == "const":
        return {"allowedValue": value}, "must be equal to constant"
    if keyword == "pattern":
        return {"pattern": value}, f'must match pattern "{value}"'
    if keyword == "multipleOf":
        return {"multipleOf": value}, f"must be multiple of {value}"
    if keyword == "uniqueItems":
        return {}, "must NOT have duplicate items"
    if keyword == "anyOf":
        return {}, "must match a schema in anyOf"
    if keyword == "oneOf":
        return {}, "must match exactly one schema in oneOf"
    if keyword == "not":
        return {}, "must NOT be valid"
    return {}, None


COMPARISONS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
COUNTS = {
    "minLength": ("fewer", "characters"),
    "maxLength": ("more", "characters"),
    "minItems": ("fewer", "items"),
    "maxItems": ("more", "items"),
    "minProperties": ("fewer", "properties"),
    "maxProperties": ("more", "properties"),
}


def _ajv(where: str, schema_path: str, keyword: str, params: dict[str, Any], message: str) -> dict[str, Any]:
    return {
        "instancePath": where,
        "schemaPath": schema_path,
        "keyword": keyword,
        "params": params,
        "message": message,
    }


def _pointer(path: Iterable[Any]) -> str:
    """A JSON Pointer (RFC 6901), as AJV writes instancePath: "" for the item itself, else "/a/0/b"."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _unresolved(error: Unresolvable) -> str:
    """The reference that led nowhere, as the schema wrote it."""
    anchor = getattr(error, "anchor", None)  # `#name`, which jsonschema reports apart from its base
    return f"#{anchor}" if anchor else error.ref


def _bad_fields(why: str) -> InvalidRequest:
    return InvalidRequest(
        f"The dataset schema's `fields` is not a JSON Schema (draft-07) items can be checked against: {why}.",
        type="invalid-value",
    )
