"""The PostgreSQL schema, as numbered steps applied in order.

schema_version holds one row per step taken. Every start (and `migrate` from the CLI) takes a
transaction-scoped advisory lock first, so when several nodes start at once one applies the steps and the
others wait, then find nothing left to do; the whole run is one transaction, so a crash leaves the database at
the version before it. A step once released never changes: a change is a new step.

Conventions: times are epoch milliseconds (bigint); keys, names and ids are `COLLATE "C"`, so they sort in
UTF-8 binary order (the API's key order) and prefix ranges are index ranges.
"""

from __future__ import annotations

import asyncpg

from satchel.errors import SatchelError, Unavailable
from satchel.storage.postgres.db import DOWN_MESSAGE, Connection, is_down, refusal, unreachable

# Any fixed 64-bit number, the same for every Satchel: the advisory lock that serialises migrations.
LOCK_KEY = 0x5A7C_4E10_0001

STEPS = (
    # 1: users and tokens, stores, grants, records, and the blob ledger.
    """
    CREATE TABLE users (
        id text COLLATE "C" PRIMARY KEY,
        username text COLLATE "C" NOT NULL UNIQUE,
        created_at bigint NOT NULL,
        default_general_access text NOT NULL DEFAULT 'RESTRICTED'
    );

    -- Tokens are high-entropy, so their SHA-256 digest is a safe index; the token itself is never stored.
    CREATE TABLE tokens (
        hash text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL REFERENCES users (id),
        created_at bigint NOT NULL
    );
    CREATE INDEX tokens_by_user ON tokens (user_id);

    CREATE TABLE stores (
        pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        user_id text COLLATE "C" NOT NULL REFERENCES users (id),
        name text COLLATE "C",
        title text,
        created_at bigint NOT NULL,
        modified_at bigint NOT NULL,
        accessed_at bigint NOT NULL,
        general_access text NOT NULL,
        url_signing_secret_key text NOT NULL,
        schema text,
        act_id text,
        act_run_id text,
        read_count bigint NOT NULL DEFAULT 0,
        write_count bigint NOT NULL DEFAULT 0,
        delete_count bigint NOT NULL DEFAULT 0,
        list_count bigint NOT NULL DEFAULT 0,
        storage_bytes bigint NOT NULL DEFAULT 0,
        UNIQUE (user_id, name)
    );
    -- Listing a user's stores in order of creation; the retention sweep over unnamed stores.
    CREATE INDEX stores_by_owner ON stores (user_id, created_at, pk);
    CREATE INDEX stores_unnamed ON stores (accessed_at) WHERE name IS NULL;

    CREATE TABLE grants (
        store_pk bigint NOT NULL REFERENCES stores (pk),
        user_id text COLLATE "C" NOT NULL REFERENCES users (id),
        access text NOT NULL CHECK (access IN ('read', 'write')),
        created_at bigint NOT NULL,
        PRIMARY KEY (store_pk, user_id)
    );
    CREATE INDEX grants_by_user ON grants (user_id, store_pk);

    -- The primary key makes a page of keys (with or without a prefix) an index range scan. body holds
    -- small records inline; blob names the blob of a large one.
    CREATE TABLE records (
        store_pk bigint NOT NULL REFERENCES stores (pk),
        key text COLLATE "C" NOT NULL,
        content_type text NOT NULL,
        content_encoding text,
        size bigint NOT NULL,
        raw_size bigint NOT NULL,
        modified_at bigint NOT NULL,
        blob text COLLATE "C",
        body bytea,
        PRIMARY KEY (store_pk, key)
    );

    -- Blobs no record names any more, deleted after a grace period (readers may still be streaming them).
    CREATE TABLE dead_blobs (
        name text COLLATE "C" PRIMARY KEY,
        dead_at bigint NOT NULL
    );
    CREATE INDEX dead_blobs_by_time ON dead_blobs (dead_at);

    -- Blobs being written and not yet named by a committed record; old ones were abandoned.
    CREATE TABLE blob_uploads (
        name text COLLATE "C" PRIMARY KEY,
        started_at bigint NOT NULL
    );
    CREATE INDEX blob_uploads_by_time ON blob_uploads (started_at);
    """,
    # 2: Console sessions, kept by the SHA-256 digest of their id. Deleting a token deletes its sessions in
    # the same transaction, so a revoked token's sessions end with it on every node.
    """
    CREATE TABLE sessions (
        hash text COLLATE "C" PRIMARY KEY,
        token_hash text COLLATE "C" NOT NULL REFERENCES tokens (hash) ON DELETE CASCADE,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE INDEX sessions_by_token ON sessions (token_hash);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    """,
    # 3: the three storages in one table, told apart by kind, each kind with its own names.
    """
    ALTER TABLE stores ADD COLUMN kind text NOT NULL DEFAULT 'key-value-store';
    ALTER TABLE stores DROP CONSTRAINT stores_user_id_name_key;
    ALTER TABLE stores ADD CONSTRAINT stores_user_id_kind_name_key UNIQUE (user_id, kind, name);
    DROP INDEX stores_by_owner;
    CREATE INDEX stores_by_owner ON stores (user_id, kind, created_at, pk);
    """,
    # 4: datasets: items numbered from 0 in order of arrival, so a page at any offset is an index range.
    """
    CREATE TABLE datasets (
        store_pk bigint PRIMARY KEY REFERENCES stores (pk),
        item_count bigint NOT NULL DEFAULT 0,
        clean_item_count bigint NOT NULL DEFAULT 0
    );
    -- No foreign key here: a push of 10,000 items would check it 10,000 times. Pushes lock the store's row
    -- and the store's delete removes its items in the same statement, so no item outlives its dataset.
    CREATE TABLE dataset_items (
        store_pk bigint NOT NULL,
        seq bigint NOT NULL,
        item bytea NOT NULL,
        PRIMARY KEY (store_pk, seq)
    );
    """,
    # 5: request queues: requests by id (derived from the uniqueKey), the pending ones in queue order.
    # order_no: normal adds count up from last_order (FIFO), forefront adds are its negation (LIFO, before all
    # normal ones); a lock moves its request to the place of its expiry (expiry ms x 1000), so an expired lock
    # puts it back at the end. last_order is at least now x 1000, so times and counts compare. Every change
    # of a queue's requests locks its request_queues row first (after a share lock on the store's row), so
    # they run one at a time per queue and a head lock never hands one request to two callers.
    """
    CREATE TABLE request_queues (
        store_pk bigint PRIMARY KEY REFERENCES stores (pk),
        total_count bigint NOT NULL DEFAULT 0,
        handled_count bigint NOT NULL DEFAULT 0,
        client_key text COLLATE "C",
        had_multiple_clients boolean NOT NULL DEFAULT false,
        queue_modified_at bigint NOT NULL DEFAULT 0,
        last_order bigint NOT NULL DEFAULT 0
    );
    -- No foreign key: writers hold the store's row and its delete removes the requests in the same statement.
    CREATE TABLE requests (
        store_pk bigint NOT NULL,
        id text COLLATE "C" NOT NULL,
        order_no bigint NOT NULL,
        handled_at bigint,
        lock_expires_at bigint,
        lock_client text COLLATE "C",
        body bytea NOT NULL,
        PRIMARY KEY (store_pk, id)
    );
    CREATE INDEX requests_pending ON requests (store_pk, order_no, id) WHERE handled_at IS NULL;
    CREATE INDEX requests_locked ON requests (store_pk, lock_expires_at)
        WHERE lock_expires_at IS NOT NULL AND handled_at IS NULL;
    """,
    # 6: Actors and their runs, as far as storages reach into them. A run's charged event counts are summed
    # from its charges, whose primary key makes a repeated idempotency key a no-op.
    """
    CREATE TABLE actors (
        id text COLLATE "C" PRIMARY KEY,
        user_id text COLLATE "C" NOT NULL REFERENCES users (id),
        name text COLLATE "C" NOT NULL,
        created_at bigint NOT NULL,
        modified_at bigint NOT NULL,
        UNIQUE (user_id, name)
    );
    CREATE TABLE runs (
        id text COLLATE "C" PRIMARY KEY,
        act_id text COLLATE "C" NOT NULL REFERENCES actors (id),
        user_id text COLLATE "C" NOT NULL REFERENCES users (id),
        status text NOT NULL,
        started_at bigint NOT NULL,
        finished_at bigint,
        exit_code integer,
        status_message text,
        is_status_message_terminal boolean NOT NULL DEFAULT false,
        origin text NOT NULL,
        general_access text NOT NULL,
        timeout_secs bigint NOT NULL,
        memory_mbytes integer NOT NULL,
        input_body_len bigint NOT NULL DEFAULT 0,
        default_key_value_store_id text COLLATE "C" NOT NULL,
        default_dataset_id text COLLATE "C" NOT NULL,
        default_request_queue_id text COLLATE "C" NOT NULL
    );
    CREATE INDEX runs_by_actor ON runs (act_id, started_at, id);
    CREATE INDEX runs_by_user ON runs (user_id, started_at, id);
    CREATE TABLE run_charges (
        run_id text COLLATE "C" NOT NULL REFERENCES runs (id),
        idempotency_key text COLLATE "C" NOT NULL,
        event_name text NOT NULL,
        count bigint NOT NULL,
        charged_at bigint NOT NULL,
        PRIMARY KEY (run_id, idempotency_key)
    );
    """,
    # 7: a token's name, given by its owner to tell tokens apart (NULL: unnamed, as every token made before).
    """
    ALTER TABLE tokens ADD COLUMN name text;
    """,
    # 8: a record's strong ETag, the SHA-256 of its stored body (NULL for records written before: computed
    # from the body when first asked for).
    """
    ALTER TABLE records ADD COLUMN etag text;
    """,
    # 9: a run's log, what its command printed, in the pieces `satchel run` sent; `start` is the piece's
    # byte offset in the log.
    """
    CREATE TABLE run_log (
        run_id text COLLATE "C" NOT NULL REFERENCES runs (id),
        seq bigint NOT NULL,
        start bigint NOT NULL,
        body bytea NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    """,
    # 10: the records that name a blob, as SQLite has them: every node's start samples a few (is its blob
    # store the one they are in?), which without it reads the whole table when bodies are mostly inline.
    """
    CREATE INDEX records_by_blob ON records (blob) WHERE blob IS NOT NULL;
    """,
    # 11: the deployment's mark, a random id also kept in the blob store the database's large bodies live in
    # (storage/pairing.py): a node or command given another blob store finds another mark, or none. One row;
    # paired_at is set once the blob store is seen to hold the mark.
    """
    CREATE TABLE deployment (
        id integer PRIMARY KEY CHECK (id = 1),
        mark text NOT NULL,
        created_at bigint NOT NULL,
        paired_at bigint
    );
    """,
)


async def migrate_connection(conn: Connection) -> int:
    """Bring the database to the newest version on this connection; return it."""
    try:
        async with conn.transaction():
            # The lock comes before anything else, even the version table's creation, which itself races.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version"
                " (version int PRIMARY KEY, applied_at bigint NOT NULL)"
            )
            version: int = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            if version > len(STEPS):
                raise SatchelError(
                    f"The database is at schema version {version}, newer than this Satchel knows "
                    f"({len(STEPS)}); upgrade Satchel."
                )
            for number, step in enumerate(STEPS[version:], start=version + 1):
                await conn.execute(step)
                await conn.execute(
                    "INSERT INTO schema_version (version, applied_at)"
                    " VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                    number,
                )
    except asyncpg.InsufficientPrivilegeError as exc:  # a user that may not create tables there
        raise SatchelError(
            f"PostgreSQL refuses to create Satchel's tables: {exc}. Satchel's user must own its database "
            "(createdb --owner), or be allowed to create tables in it."
        ) from exc
    return len(STEPS)


async def migrate(dsn: str, *, connect_timeout: float = 30.0) -> int:
    """Bring the database at dsn to the newest version; return it. For the CLI and the engine's start."""
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    except Exception as exc:
        if is_down(exc):
            raise unreachable(dsn, exc, connect_timeout) from exc
        if refused := refusal(exc):
            raise refused from exc
        raise
    try:
        return await migrate_connection(conn)
    except Exception as exc:
        if is_down(exc):
            raise Unavailable(DOWN_MESSAGE) from exc
        raise
    finally:
        await conn.close()
