-- API tokens (issue 12): machines (Alertmanager, dashboards, scripts) read and write through
-- the HTTP API with `Authorization: Bearer fbk_…`. Only the SHA-256 of a token is kept
-- (hex, `token_hash`); the token itself is shown once by `firebreak token create`. scopes is
-- a comma-separated list (`read,declare`). A name is unique among tokens not yet revoked;
-- revoked rows stay for the record. last_used_at is written at most once a minute.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
