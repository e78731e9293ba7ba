-- Sessions ended by signing out, by their cookie's nonce, kept until the cookie would have
-- expired anyway (rows past `expires_at` are pruned): the guard refuses a listed cookie.
CREATE TABLE ended_sessions (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ended_sessions_by_expiry ON ended_sessions (expires_at);
