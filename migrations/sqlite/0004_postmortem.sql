-- Post-mortem material: the update promises made over time, the written sections, and the
-- action items.

-- Every time the next status update was promised (declare, update, severity change), so a
-- post-mortem can say which updates came on time.
CREATE TABLE update_promises (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    set_at      INTEGER NOT NULL,
    due_at      INTEGER NOT NULL
);
CREATE INDEX update_promises_by_incident ON update_promises (incident_id, set_at);

CREATE TABLE postmortem_fields (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    field       TEXT NOT NULL,
    text        TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (incident_id, field)
);

CREATE TABLE action_items (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    number      INTEGER NOT NULL,
    text        TEXT NOT NULL,
    owner       TEXT,
    term        TEXT NOT NULL CHECK (term IN ('immediate', 'medium', 'long')),
    done        INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    created_at  INTEGER NOT NULL,
    done_at     INTEGER,
    PRIMARY KEY (incident_id, number)
);
