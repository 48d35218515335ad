"""Changes to the embedded schema after its first release, applied in order on open.

`PRAGMA user_version` counts the steps a database has taken. schema.sql is the first release's schema; each
step here moves a database one version on, inside one transaction, so a crash leaves it at one version or the
next. Several processes may open the same file at once: the first to take the write lock does the work.
"""

from __future__ import annotations

import sqlite3

STEPS = (
    # 1: per-user default access, and sharing of stores between users.
    """
    ALTER TABLE users ADD COLUMN default_general_access TEXT NOT NULL DEFAULT 'RESTRICTED';
    CREATE TABLE grants (
        store_pk INTEGER NOT NULL REFERENCES stores(pk),
        user_id TEXT NOT NULL REFERENCES users(id),
        access TEXT NOT NULL CHECK (access IN ('read', 'write')),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (store_pk, user_id)
    );
    CREATE INDEX grants_by_user ON grants (user_id, store_pk);
    CREATE INDEX tokens_by_user ON tokens (user_id);
    """,
    # 2: uploads of blobs not yet committed, so a crash between the upload and its commit leaves a name
    # that housekeeping finds (instead of a scan of every blob for ones no record names).
    """
    CREATE TABLE blob_uploads (
        name TEXT PRIMARY KEY,
        started_at INTEGER NOT NULL
    );
    """,
    # 3: Console sessions, kept by the SHA-256 digest of their id. Deleting a token deletes its sessions in
    # the same transaction (foreign keys are not enforced here, so a trigger does what PostgreSQL's cascade
    # does): a revoked token's sessions end with it, and a token added again later does not revive them.
    """
    CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_token ON sessions (token_hash);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE TRIGGER tokens_end_sessions AFTER DELETE ON tokens BEGIN
        DELETE FROM sessions WHERE token_hash = old.hash;
    END;
    """,
    # 4: the three storages in one table, told apart by kind, each kind with its own names. SQLite cannot
    # drop the old UNIQUE (user_id, name), so the table is rebuilt (foreign keys are not enforced here).
    """
    CREATE TABLE stores_v4 (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL DEFAULT 'key-value-store',
        user_id TEXT NOT NULL REFERENCES users(id),
        name TEXT,
        title TEXT,
        created_at INTEGER NOT NULL,
        modified_at INTEGER NOT NULL,
        accessed_at INTEGER NOT NULL,
        general_access TEXT NOT NULL,
        url_signing_secret_key TEXT NOT NULL,
        schema TEXT,
        act_id TEXT,
        act_run_id TEXT,
        read_count INTEGER NOT NULL DEFAULT 0,
        write_count INTEGER NOT NULL DEFAULT 0,
        delete_count INTEGER NOT NULL DEFAULT 0,
        list_count INTEGER NOT NULL DEFAULT 0,
        storage_bytes INTEGER NOT NULL DEFAULT 0,
        UNIQUE (user_id, kind, name)
    );
    INSERT INTO stores_v4 (pk, id, user_id, name, title, created_at, modified_at, accessed_at, general_access,
                           url_signing_secret_key, schema, act_id, act_run_id, read_count, write_count,
                           delete_count, list_count, storage_bytes)
    SELECT pk, id, user_id, name, title, created_at, modified_at, accessed_at, general_access,
           url_signing_secret_key, schema, act_id, act_run_id, read_count, write_count, delete_count,
           list_count, storage_bytes FROM stores;
    DROP TABLE stores;
    ALTER TABLE stores_v4 RENAME TO stores;
    CREATE INDEX stores_by_owner ON stores (user_id, kind, created_at);
    CREATE INDEX stores_unnamed ON stores (accessed_at) WHERE name IS NULL;
    """,
    # 5: datasets: items numbered from 0 in order of arrival, so a page at any offset is an index range.
    """
    CREATE TABLE datasets (
        store_pk INTEGER PRIMARY KEY,
        item_count INTEGER NOT NULL DEFAULT 0,
        clean_item_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE dataset_items (
        id INTEGER PRIMARY KEY,
        store_pk INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        item BLOB NOT NULL
    );
    CREATE UNIQUE INDEX dataset_items_by_seq ON dataset_items (store_pk, seq);
    """,
    # 6: request queues: requests by id (derived from the uniqueKey), the pending ones in queue order.
    # order_no: normal adds count up from last_order (FIFO), forefront adds are its negation (LIFO, before all
    # normal ones); a lock moves its request to the place of its expiry (expiry ms x 1000), so an expired lock
    # puts it back at the end. last_order is at least now x 1000, so times and counts compare.
    """
    CREATE TABLE request_queues (
        store_pk INTEGER PRIMARY KEY,
        total_count INTEGER NOT NULL DEFAULT 0,
        handled_count INTEGER NOT NULL DEFAULT 0,
        client_key TEXT,
        had_multiple_clients INTEGER NOT NULL DEFAULT 0,
        queue_modified_at INTEGER NOT NULL DEFAULT 0,
        last_order INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE requests (
        pk INTEGER PRIMARY KEY,
        store_pk INTEGER NOT NULL,
        id TEXT NOT NULL,
        order_no INTEGER NOT NULL,
        handled_at INTEGER,
        lock_expires_at INTEGER,
        lock_client TEXT,
        body BLOB NOT NULL
    );
    CREATE UNIQUE INDEX requests_by_id ON requests (store_pk, id);
    CREATE INDEX requests_pending ON requests (store_pk, order_no, id) WHERE handled_at IS NULL;
    CREATE INDEX requests_locked ON requests (store_pk, lock_expires_at)
        WHERE lock_expires_at IS NOT NULL AND handled_at IS NULL;
    """,
    # 7: Actors and their runs, as far as storages reach into them. A run's charged event counts are summed
    # from its charges, whose primary key makes a repeated idempotency key a no-op.
    """
    CREATE TABLE actors (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        modified_at INTEGER NOT NULL,
        UNIQUE (user_id, name)
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        act_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        exit_code INTEGER,
        status_message TEXT,
        is_status_message_terminal INTEGER NOT NULL DEFAULT 0,
        origin TEXT NOT NULL,
        general_access TEXT NOT NULL,
        timeout_secs INTEGER NOT NULL,
        memory_mbytes INTEGER NOT NULL,
        input_body_len INTEGER NOT NULL DEFAULT 0,
        default_key_value_store_id TEXT NOT NULL,
        default_dataset_id TEXT NOT NULL,
        default_request_queue_id TEXT NOT NULL
    );
    CREATE INDEX runs_by_actor ON runs (act_id, started_at, id);
    CREATE INDEX runs_by_user ON runs (user_id, started_at, id);
    CREATE TABLE run_charges (
        run_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        event_name TEXT NOT NULL,
        count INTEGER NOT NULL,
        charged_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, idempotency_key)
    );
    """,
    # 8: a token's name, given by its owner to tell tokens apart (NULL: unnamed, as every token made before).
    """
    ALTER TABLE tokens ADD COLUMN name TEXT;
    """,
    # 9: a record's strong ETag, the SHA-256 of its stored body (NULL for records written before: computed
    # from the body when first asked for).
    """
    ALTER TABLE records ADD COLUMN etag TEXT;
    """,
    # 10: a run's log, what its command printed, in the pieces `satchel run` sent; `start` is the piece's
    # byte offset in the log.
    """
    CREATE TABLE run_log (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        start INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    """,
    # 11: the deployment's mark, a random id also kept in the blob store the database's large bodies live in
    # (storage/pairing.py): a node or command given another blob store finds another mark, or none. One row;
    # paired_at is set once the blob store is seen to hold the mark.
    """
    CREATE TABLE deployment (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        mark TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        paired_at INTEGER
    );
    """,
)


def statements(step: str) -> list[str]:
    """A step's statements, one by one (executescript would commit the migration's transaction first).

    Split at the semicolons that end a statement, not at those inside one (a trigger's body).
    """
    found: list[str] = []
    pending = ""
    for piece in step.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                found.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        found.append(pending.strip())
    return found


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest version; return it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(STEPS):
            raise RuntimeError(
                f"The database is at schema version {version}, newer than this Satchel knows ({len(STEPS)});"
                " upgrade Satchel."
            )
        for number, step in enumerate(STEPS[version:], start=version + 1):
            for statement in statements(step):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(STEPS)
