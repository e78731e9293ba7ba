-- Everyone who wrote a post-mortem section, in the order they first did: a field keeps only
-- its last writer, and an author whose text was later edited by someone else is an author
-- still.
CREATE TABLE postmortem_authors (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    author TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, author)
);

INSERT INTO postmortem_authors (incident_id, author, first_at)
SELECT incident_id, updated_by, MIN(updated_at) FROM postmortem_fields
GROUP BY incident_id, updated_by;

-- "What went wrong" is stored under its name; `went-poorly` (its first name) is still
-- accepted as input.
UPDATE postmortem_fields SET field = 'went-wrong' WHERE field = 'went-poorly';
