"""Pages of keys as ranges of the records' primary key (store_pk, key COLLATE "C").

A prefix becomes a range [prefix, successor) rather than LIKE, so every page is one index range scan that
stops after `limit` rows, however large the store and whatever the prefix.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"
SURROGATES = range(0xD800, 0xE000)  # not characters, and PostgreSQL's text cannot hold them


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with prefix (None: no bound).

    Code point order is UTF-8 byte order, the order of COLLATE "C".
    """
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if point in SURROGATES:
            point = SURROGATES.stop
        if point <= 0x10FFFF:
            return "".join(chars) + chr(point)
    return None


def key_page(
    columns: str, store_pk: int, *, prefix: str, after: str | None, limit: int
) -> tuple[str, list[Any]]:
    """The query (and its arguments) for up to limit records after `after` that start with prefix.

    A prefix or `after` may hold NUL, which PostgreSQL's text cannot, and no key holds (keys are checked on
    write): no key starts with such a prefix, and the keys above such an `after` are those above its part
    before the NUL (a key that starts with that part goes on with a character above NUL).
    """
    if NUL in prefix:
        return f"SELECT {columns} FROM records WHERE false LIMIT $1", [limit]  # noqa: S608 - no user input
    if after is None or after < prefix:
        low, op = prefix, ">="
    else:
        low, op = after.partition(NUL)[0], ">"
    args: list[Any] = [store_pk, low]
    sql = f"SELECT {columns} FROM records WHERE store_pk = $1 AND key {op} $2"  # noqa: S608 - no user input
    high = prefix_end(prefix)
    if high is not None:
        args.append(high)
        sql += " AND key < $3"
    args.append(limit)
    return f"{sql} ORDER BY key LIMIT ${len(args)}", args
