-- Signing in to the web pages with a generic OpenID Connect provider (issue 12): a person
-- known by a verified email acts as `email:<address>`, so `email` joins the timeline's
-- sources. (Slack sign-in acts as `slack:<user id>`, already a source.) SQLite cannot change
-- a CHECK constraint in place, so the table is rebuilt with every row (ids kept), its index
-- and its append-only triggers, as in 0012.
CREATE TABLE timeline_entries_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT REFERENCES incidents (id),
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('slack', 'discord', 'cli', 'github', 'system', 'api', 'email')),
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
