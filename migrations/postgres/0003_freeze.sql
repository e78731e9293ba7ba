-- Merge freezes: the wanted state per scope (with a generation), the state last verified on
-- GitHub per repository (or org), exemptions, and the PR statuses firebreak has set.

INSERT INTO counters (name, value) VALUES ('freeze_generation', 0);

-- What we want. One row per scope (`acme/api`, or `acme/*` for a whole org). The generation
-- grows with every freeze/unfreeze, so an older plan can never overwrite a newer one.
CREATE TABLE freeze_scopes (
    scope        TEXT PRIMARY KEY,
    frozen       BIGINT NOT NULL CHECK (frozen IN (0, 1)),
    generation   BIGINT NOT NULL,
    incident_id  TEXT REFERENCES incidents (id),
    reason       TEXT,
    drill        BIGINT NOT NULL DEFAULT 0 CHECK (drill IN (0, 1)),
    requested_by TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- What GitHub had when the reconciler last looked (and acted).
CREATE TABLE freeze_targets (
    target             TEXT PRIMARY KEY,
    scope              TEXT NOT NULL,
    desired            TEXT NOT NULL,
    actual             TEXT NOT NULL,
    ruleset_id         BIGINT,
    applied_generation BIGINT NOT NULL,
    verified_at        BIGINT NOT NULL,
    last_error         TEXT
);

CREATE TABLE freeze_exemptions (
    repo       TEXT NOT NULL,
    pr_number  BIGINT NOT NULL,
    allowed_by TEXT NOT NULL,
    reason     TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repo, pr_number)
);

-- The firebreak/merge-freeze status last set on each head commit.
CREATE TABLE freeze_pr_statuses (
    repo       TEXT NOT NULL,
    sha        TEXT NOT NULL,
    pr_number  BIGINT NOT NULL,
    state      TEXT NOT NULL,
    generation BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, sha)
);
