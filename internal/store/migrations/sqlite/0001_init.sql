-- Resources in Routr's v2 JSON format, one row each. Refs are unique
-- across kinds, as in Routr. Times are Unix microseconds.
CREATE TABLE resources (
    ref        TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,     -- the resource, Credentials without their password
    secret     BLOB,             -- a Credentials' password, AES-256-GCM sealed
    seq        INTEGER NOT NULL,   -- revision that created the row: list order and page tokens
    rev        INTEGER NOT NULL,   -- revision that last wrote the row
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX resources_kind_seq ON resources (kind, seq);

-- One row: the revision every write bumps, and a value sealed with the
-- encryption key so that a wrong key is caught at start.
CREATE TABLE store_meta (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL,
    key_check BLOB
);
INSERT INTO store_meta (id, revision) VALUES (1, 0);

-- Management API keys: only a SHA-256 of the secret part is kept.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
