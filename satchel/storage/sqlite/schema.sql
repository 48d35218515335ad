-- The embedded engine's schema. Times are epoch milliseconds.
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- Tokens are high-entropy, so a SHA-256 digest is a safe index; the token itself is never stored.
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS stores (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
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
    UNIQUE (user_id, name)
);
CREATE INDEX IF NOT EXISTS stores_by_owner ON stores (user_id, created_at);
CREATE INDEX IF NOT EXISTS stores_unnamed ON stores (accessed_at) WHERE name IS NULL;

-- An ordinary rowid table: bodies in a WITHOUT ROWID table cost 3x the space.
-- Keys are ASCII by validation, so BINARY collation is UTF-8 binary order.
-- body holds small records inline; blob names a file in the blob folder for large ones.
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    store_pk INTEGER NOT NULL,
    key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content_encoding TEXT,
    size INTEGER NOT NULL,
    raw_size INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    blob TEXT,
    body BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS records_by_key ON records (store_pk, key);
-- Which record names a blob file: the orphan scan asks once per file.
CREATE INDEX IF NOT EXISTS records_by_blob ON records (blob) WHERE blob IS NOT NULL;

-- Blob files no longer referenced; unlinked after a grace period so that readers
-- which looked a record up just before it changed can still open its file.
CREATE TABLE IF NOT EXISTS dead_blobs (
    name TEXT PRIMARY KEY,
    dead_at INTEGER NOT NULL
);
