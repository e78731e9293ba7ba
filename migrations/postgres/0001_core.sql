-- The incident core: incidents, their append-only timeline, and the durable effects queue.
-- Times are epoch milliseconds (UTC), BIGINT, the same representation as on SQLite.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('incident_number', 0);

CREATE TABLE incidents (
    id              TEXT PRIMARY KEY,
    number          BIGINT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('SEV1', 'SEV2', 'SEV3', 'SEV4')),
    status          TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'mitigated', 'resolved')),
    drill           BIGINT NOT NULL DEFAULT 0 CHECK (drill IN (0, 1)),
    started_at      BIGINT,
    detected_at     BIGINT,
    declared_at     BIGINT NOT NULL,
    acknowledged_at BIGINT,
    mitigated_at    BIGINT,
    resolved_at     BIGINT,
    commander       TEXT,
    comms           TEXT,
    scribe          TEXT,
    summary         TEXT,
    last_update_at  BIGINT,
    next_update_due BIGINT,
    declared_by     TEXT NOT NULL,
    version         BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX incidents_by_status ON incidents (status, number);

CREATE TABLE timeline_entries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id TEXT REFERENCES incidents (id),
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('slack', 'discord', 'cli', 'github', 'system')),
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline_entries (incident_id, occurred_at, id);

-- The timeline is evidence: nothing may rewrite it.
CREATE FUNCTION timeline_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'timeline entries are append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER timeline_entries_no_change BEFORE UPDATE OR DELETE ON timeline_entries
    FOR EACH ROW EXECUTE FUNCTION timeline_entries_append_only();

CREATE TABLE effects (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     TEXT REFERENCES incidents (id),
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    run_at          BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    result          TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX effects_due ON effects (state, run_at);
