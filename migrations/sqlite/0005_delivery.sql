-- Delivery that survives a real outage.
--
-- waiting_on: the target (a webhook, an API) an effect is waiting for after a failure or a
-- circuit-breaker hold. When that target answers again every effect waiting on it is
-- released at once instead of sitting out its backoff.
ALTER TABLE effects ADD COLUMN waiting_on TEXT;
CREATE INDEX effects_waiting_on ON effects (waiting_on) WHERE waiting_on IS NOT NULL;
-- What a CLI write caused, for its drain to follow (a fan-out's per-channel effects).
CREATE INDEX effects_by_incident ON effects (incident_id, created_at);
-- lease_owner: the worker holding a running effect's lease, so a restart on the same host
-- can take over a dead worker's effects at once rather than after the lease.
ALTER TABLE effects ADD COLUMN lease_owner TEXT;
-- budget_from: when the retry budget (effects.give_up_after) started: enqueue, or the last
-- `firebreak effects retry`.
ALTER TABLE effects ADD COLUMN budget_from INTEGER;

-- Live workers (serve, and a CLI while it drains its own effects).
CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

-- A row /readyz writes to (and rolls back) to prove the store accepts writes.
CREATE TABLE readiness_probe (
    id         INTEGER PRIMARY KEY,
    checked_at INTEGER NOT NULL
);
INSERT INTO readiness_probe (id, checked_at) VALUES (1, 0);
