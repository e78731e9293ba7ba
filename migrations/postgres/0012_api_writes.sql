-- The HTTP API for machines (issue 12): callers with an API token act as `api:<token name>`,
-- an `Idempotency-Key` is remembered with the request it came with, and each Alertmanager
-- alert group remembers its incident.

-- `api` joins the timeline's sources.
ALTER TABLE timeline_entries DROP CONSTRAINT timeline_entries_source_check;
ALTER TABLE timeline_entries ADD CONSTRAINT timeline_entries_source_check
    CHECK (source IN ('slack', 'discord', 'cli', 'github', 'system', 'api'));

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
    version      BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
