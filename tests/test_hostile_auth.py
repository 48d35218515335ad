"""Hostile credentials: forged, malformed, revoked and other users' tokens; forged, misapplied, malformed and
expired signatures, never a grant to write. Sent over a raw socket to a seeded server, each case with the
status and error type it must get (tests/harness/hostile.py holds the client and the rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.hostile import (
    FORGED_TOKEN,
    REC,
    SEED_NAME,
    STORE,
    Case,
    Engine,
    Hostile,
    Table,
    check_case,
    check_table_leaves_kv_seed_unchanged,
)

TABLE = Table()
case = TABLE.case

# Tokens: forged, malformed, revoked, somebody else's.
for name, (headers, query, token, status, etype) in {
    "forged": ((), "", "forged", 401, "invalid-token"),
    "revoked": ((), "", "revoked", 401, "invalid-token"),
    "other-user": ((), "", "bob", 404, "record-not-found"),
    "none": ((), "", None, 404, "record-or-token-not-found"),
    "bearer-empty": ((("Authorization", "Bearer "),), "", None, 404, "record-or-token-not-found"),
    "bearer-only": ((("Authorization", "Bearer"),), "", None, 404, "record-or-token-not-found"),
    "basic-scheme": (
        (("Authorization", "Basic YWRtaW46YWRtaW4="),),
        "",
        None,
        404,
        "record-or-token-not-found",
    ),
    "lowercase-scheme": ((("Authorization", "bearer {admin_token}"),), "", None, 200, None),
    "token-in-query": ((), "?token={admin_token}", None, 200, None),
    "forged-in-query": ((), "?token=" + FORGED_TOKEN, None, 401, "invalid-token"),
    "revoked-in-query": ((), "?token={revoked_token}", None, 401, "invalid-token"),
    "token-with-spaces": ((("Authorization", "Bearer  {admin_token}  "),), "", None, 200, None),
    "token-plus-junk": ((("Authorization", "Bearer {admin_token}x"),), "", None, 401, "invalid-token"),
    "token-truncated": ((("Authorization", "Bearer apify_api_"),), "", None, 401, "invalid-token"),
    "token-nul": ((), "?token=%00", None, 401, "invalid-token"),
    "token-ff": ((), "?token=%FF", None, 401, "invalid-token"),
    "two-auth-headers": (
        (("Authorization", "Bearer " + FORGED_TOKEN), ("Authorization", "Bearer {admin_token}")),
        "",
        None,
        401,
        "invalid-token",
    ),
    "header-beats-query": ((), "?token=" + FORGED_TOKEN, "admin", 200, None),
}.items():
    case("tokens", name, "GET", REC + "k1" + query, status, etype, headers=headers, token=token)
case("tokens", "forged-put", "PUT", REC + "k1", 401, "invalid-token", token="forged", body=b"changed")
case("tokens", "revoked-put", "PUT", REC + "k1", 401, "invalid-token", token="revoked", body=b"changed")
case("tokens", "anonymous-put", "PUT", REC + "k1", 401, "token-not-provided", token=None, body=b"changed")
case("tokens", "anonymous-delete", "DELETE", REC + "k1", 401, "token-not-provided", token=None)
case("tokens", "other-user-put", "PUT", REC + "k1", 404, "record-not-found", token="bob", body=b"changed")
case("tokens", "other-user-delete-store", "DELETE", STORE, 404, "record-not-found", token="bob")
case("tokens", "anonymous-me", "GET", "/users/me", 401, "token-not-provided", token=None)
case("tokens", "revoked-me", "GET", "/users/me", 401, "invalid-token", token="revoked")
case("tokens", "anonymous-list", "GET", "/key-value-stores", 401, "token-not-provided", token=None)
case(
    "tokens",
    "anonymous-tilde",
    "GET",
    f"/key-value-stores/~{SEED_NAME}",
    401,
    "token-not-provided",
    token=None,
)

# Signatures: forged, for another record or store, malformed, expired; never a grant to write. One that
# grants nothing counts as none: the answer a missing store gets, so no one learns the store exists. Only a
# genuine one that has expired says so.
HIDDEN = "record-or-token-not-found"
for name, (target, status, etype) in {
    "record-valid": (REC + "k1?signature={sig_k1}", 200, None),
    "record-forged": (REC + "k1?signature=pcVagAsudj8dFqdlg7mG", 404, HIDDEN),
    "record-other-key": (REC + "k1?signature={sig_gz}", 404, HIDDEN),
    "record-other-store": (REC + "k1?signature={sig_k1_scratch}", 404, HIDDEN),
    "record-storage-sig": (REC + "k1?signature={sig_keys}", 404, HIDDEN),
    "record-long": (REC + "k1?signature=" + "a" * 5000, 404, HIDDEN),
    "record-nul": (REC + "k1?signature=%00", 404, HIDDEN),
    "record-ff": (REC + "k1?signature=%FF%FE", 404, HIDDEN),
    "record-empty": (REC + "k1?signature=", 404, "record-or-token-not-found"),
    "record-valid-head": (REC + "k1?signature={sig_k1}&method=HEAD", 200, None),
    "keys-valid": (STORE + "/keys?signature={sig_keys}", 200, None),
    "keys-unpadded": (STORE + "/keys?signature={sig_keys_unpadded}", 200, None),
    "keys-future": (STORE + "/keys?signature={sig_keys_future}", 200, None),
    "keys-expired": (STORE + "/keys?signature={sig_keys_expired}", 403, "invalid-signature"),
    "keys-other-store": (STORE + "/keys?signature={sig_keys_scratch}", 404, HIDDEN),
    "keys-record-sig": (STORE + "/keys?signature={sig_k1}", 404, HIDDEN),
    "keys-bad-base64": (STORE + "/keys?signature=%%%%", 404, HIDDEN),
    "keys-version-1": (STORE + "/keys?signature={sig_keys_v1}", 404, HIDDEN),
    "keys-negative-expiry": (STORE + "/keys?signature={sig_keys_negative}", 404, HIDDEN),
    "keys-huge-expiry-genuine": (STORE + "/keys?signature={sig_keys_huge}", 200, None),
    "keys-too-many-digits": (STORE + "/keys?signature={sig_keys_digits}", 404, HIDDEN),
    "keys-non-ascii-mac": (STORE + "/keys?signature={sig_keys_non_ascii}", 404, HIDDEN),
    "record-non-ascii": (REC + "k1?signature=%C3%A9t%C3%A9", 404, HIDDEN),
    "keys-not-utf8": (STORE + "/keys?signature=__8=", 404, HIDDEN),
    "keys-four-parts": (STORE + "/keys?signature={sig_keys_parts}", 404, HIDDEN),
    "record-expiring": (REC + "k1?signature={sig_k1_expiring}", 200, None),
    "record-expiring-expired": (REC + "k1?signature={sig_k1_expiring_expired}", 403, "invalid-signature"),
    "record-expiring-other-key": (REC + "k1?signature={sig_gz_expiring}", 404, HIDDEN),
    "record-expiring-as-keys": (STORE + "/keys?signature={sig_k1_expiring}", 404, HIDDEN),
    "zip-valid": (STORE + "/records?signature={sig_keys}", 200, None),
    "zip-expired": (STORE + "/records?signature={sig_keys_expired}", 403, "invalid-signature"),
    "store-object-no-grant": (STORE + "?signature={sig_keys}", 404, "record-or-token-not-found"),
    "by-name-signed": (f"/key-value-stores/admin~{SEED_NAME}/keys?signature={{sig_keys}}", 200, None),
}.items():
    case("signatures", name, "GET", target, status, etype, token=None)
case(
    "signatures",
    "put-with-signature",
    "PUT",
    REC + "k1?signature={sig_k1}",
    401,
    "token-not-provided",
    token=None,
    body=b"changed",
)
case(
    "signatures",
    "delete-with-signature",
    "DELETE",
    REC + "k1?signature={sig_k1}",
    401,
    "token-not-provided",
    token=None,
)
case(
    "signatures",
    "override-put-signed",
    "GET",
    REC + "k1?signature={sig_k1}&method=PUT",
    401,
    "token-not-provided",
    token=None,
)
case(
    "signatures",
    "other-user-forged",
    "GET",
    REC + "k1?signature=forged",
    404,
    "record-not-found",
    token="bob",
)


# --- the table, one case at a time and then all at once


@pytest.mark.parametrize("c", TABLE.cases, ids=TABLE.ids)
def test_case(hostile: Hostile, c: Case) -> None:
    check_case(hostile, c)


def test_whole_table_concurrently_leaves_the_seed_unchanged(tmp_path: Path, engine: Engine) -> None:
    """The table again, eight requests at a time on a server of its own: the rules hold, the seeded store is
    unchanged after it, and nothing was logged as an unexpected error."""
    check_table_leaves_kv_seed_unchanged(tmp_path, TABLE.cases, engine)
