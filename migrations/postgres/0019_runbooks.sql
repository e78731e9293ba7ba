-- The runbook attached to an incident, as it was when attached (a later edit of the file
-- does not change a running incident), and each of its steps with what happened to it.
CREATE TABLE incident_runbooks (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    runbook TEXT NOT NULL,
    spec TEXT NOT NULL,
    attached_at BIGINT NOT NULL
);

CREATE TABLE runbook_steps (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    step_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    automatic BIGINT NOT NULL,
    -- Absolute target time (the declaration plus the step's offset).
    target_at BIGINT NOT NULL,
    -- When a person said they started it (`runbook start`), and who.
    started_at BIGINT,
    started_by TEXT,
    -- done | skipped | failed; NULL while open.
    outcome TEXT,
    finished_at BIGINT,
    finished_by TEXT,
    note TEXT,
    nudged_at BIGINT,
    PRIMARY KEY (incident_id, step_id)
);

-- The sweep looks for open steps that are due.
CREATE INDEX runbook_steps_open ON runbook_steps (target_at) WHERE outcome IS NULL;
