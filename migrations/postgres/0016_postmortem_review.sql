-- The post-mortem document's own state: draft, in review or final, and its reviewers.
CREATE TABLE postmortem_docs (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id),
    status TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE postmortem_reviewers (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    reviewer TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, reviewer)
);
