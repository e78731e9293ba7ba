-- What the periodic runbook check found stale (a repository, channel or webhook a step names
-- that is gone or does not answer), one row per problem. Posting and clearing are
-- compare-and-sets on the row, so each occurrence is reported once across replicas and
-- restarts; a problem that clears and later returns starts a new occurrence.
CREATE TABLE runbook_findings (
    -- runbook/step/what: stable while the problem lasts.
    key TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    step TEXT NOT NULL,
    what TEXT NOT NULL,
    problem TEXT NOT NULL,
    -- When this occurrence was first and last seen.
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    -- When its report was queued; NULL until then.
    posted_at BIGINT,
    -- When a check no longer found it; NULL while it lasts.
    cleared_at BIGINT
);
