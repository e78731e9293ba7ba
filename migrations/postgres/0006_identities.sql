-- Identities and idempotent inbound (issue 9).
--
-- people: display names for stored identities (`slack:U024BE7LH`), for documents and the
-- CLI. Filled from Slack's users.info; a name a payload carried (a slash command's
-- user_name) is kept as a hint with fetched_at NULL until the lookup answers.
CREATE TABLE people (
    identity     TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    fetched_at   BIGINT
);

-- The answer given to an inbound delivery (a slash command's JSON reply), so a retry of the
-- same request gets the same answer instead of a second application.
ALTER TABLE inbound_seen ADD COLUMN reply TEXT;
