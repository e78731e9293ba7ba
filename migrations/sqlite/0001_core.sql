-- The incident core: incidents, their append-only timeline, and the durable effects queue.
-- Times are epoch milliseconds (UTC).

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('incident_number', 0);

CREATE TABLE incidents (
    id              TEXT PRIMARY KEY,
    number          INTEGER NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('SEV1', 'SEV2', 'SEV3', 'SEV4')),
    status          TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'mitigated', 'resolved')),
    drill           INTEGER NOT NULL DEFAULT 0 CHECK (drill IN (0, 1)),
    started_at      INTEGER,
    detected_at     INTEGER,
    declared_at     INTEGER NOT NULL,
    acknowledged_at INTEGER,
    mitigated_at    INTEGER,
    resolved_at     INTEGER,
    commander       TEXT,
    comms           TEXT,
    scribe          TEXT,
    summary         TEXT,
    last_update_at  INTEGER,
    next_update_due INTEGER,
    declared_by     TEXT NOT NULL,
    version         INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX incidents_by_status ON incidents (status, number);

CREATE TABLE timeline_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT REFERENCES incidents (id),
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('slack', 'discord', 'cli', 'github', 'system')),
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline_entries (incident_id, occurred_at, id);

-- The timeline is evidence: nothing may rewrite it.
CREATE TRIGGER timeline_entries_no_update BEFORE UPDATE ON timeline_entries
BEGIN
    SELECT RAISE(ABORT, 'timeline entries are append-only');
END;
CREATE TRIGGER timeline_entries_no_delete BEFORE DELETE ON timeline_entries
BEGIN
    SELECT RAISE(ABORT, 'timeline entries are append-only');
END;

CREATE TABLE effects (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     TEXT REFERENCES incidents (id),
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_at          INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    result          TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX effects_due ON effects (state, run_at);
