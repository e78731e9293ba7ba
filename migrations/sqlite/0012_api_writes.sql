-- The HTTP API for machines (issue 12): callers with an API token act as `api:<token name>`,
-- an `Idempotency-Key` is remembered with the request it came with, and each Alertmanager
-- alert group remembers its incident.

-- `api` joins the timeline's sources. SQLite cannot change a CHECK constraint in place, so
-- the table is rebuilt with every row (ids kept), its index and its append-only triggers.
-- Nothing references timeline_entries, and DROP TABLE fires no DELETE trigger.
CREATE TABLE timeline_entries_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT REFERENCES incidents (id),
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('slack', 'discord', 'cli', 'github', 'system', 'api')),
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL
);
INSERT INTO timeline_entries_new (id, incident_id, occurred_at, recorded_at, actor, source, kind, text)
    SELECT id, incident_id, occurred_at, recorded_at, actor, source, kind, text FROM timeline_entries;
DROP TABLE timeline_entries;
ALTER TABLE timeline_entries_new RENAME TO timeline_entries;
CREATE INDEX timeline_by_incident ON timeline_entries (incident_id, occurred_at, id);
CREATE TRIGGER timeline_entries_no_update BEFORE UPDATE ON timeline_entries
BEGIN
    SELECT RAISE(ABORT, 'timeline entries are append-only');
END;
CREATE TRIGGER timeline_entries_no_delete BEFORE DELETE ON timeline_entries
BEGIN
    SELECT RAISE(ABORT, 'timeline entries are append-only');
END;

-- An Idempotency-Key is an inbound delivery (source `api`, id from the token's name and the
-- key). request_hash: SHA-256 of the method, path and body it first came with, so the same
-- key with another body is refused. incident_id: the incident a delivery declared, written
-- in the declaration's own transaction (an Alertmanager group's retry finds it there).
ALTER TABLE inbound_seen ADD COLUMN request_hash TEXT;
ALTER TABLE inbound_seen ADD COLUMN incident_id TEXT;

-- One row per Alertmanager group (`groupKey`): the incident it opened, and what was last
-- acted on: `status` and the sorted fingerprints of the alerts then firing. version is the
-- compare-and-set counter: every change of the row is `WHERE version = <seen>`.
CREATE TABLE alert_groups (
    group_key    TEXT PRIMARY KEY,
    incident_id  TEXT NOT NULL REFERENCES incidents (id),
    status       TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    fingerprints TEXT NOT NULL,
    version      INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
