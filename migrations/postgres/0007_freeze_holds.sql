-- Freeze holds (issue 10): a scope is frozen while it has at least one hold. A hold belongs
-- to an incident (holder = the incident's id) or to a person for a manual freeze (holder =
-- the actor's identity, `slack:U…` or `cli:alice`). Unfreezing removes one holder's hold;
-- the ruleset comes off only when none remain. freeze_scopes stays the wanted state the
-- reconciler works from (frozen = any hold), with its generation.
CREATE TABLE freeze_holds (
    id           BIGSERIAL PRIMARY KEY,
    scope        TEXT NOT NULL,
    holder       TEXT NOT NULL,
    incident_id  TEXT REFERENCES incidents (id),
    reason       TEXT,
    drill        BIGINT NOT NULL DEFAULT 0 CHECK (drill IN (0, 1)),
    requested_by TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    UNIQUE (scope, holder)
);

CREATE INDEX freeze_holds_expiry ON freeze_holds (expires_at);

-- What was frozen before holds existed becomes one hold: the incident's, or the requester's.
INSERT INTO freeze_holds (scope, holder, incident_id, reason, drill, requested_by, started_at, expires_at)
SELECT scope, COALESCE(incident_id, requested_by), incident_id, reason, drill, requested_by, updated_at, NULL
FROM freeze_scopes WHERE frozen = 1;
