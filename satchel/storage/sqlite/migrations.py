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
