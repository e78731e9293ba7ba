-- Chat integration: per-incident message references, inbound de-duplication, FIFO effect
-- ordering, and reminder bookkeeping.

-- Effects with the same ordering_key run one at a time in id order (a FIFO group), so
-- "create the channel" always precedes "post in the channel". NULL means unordered.
ALTER TABLE effects ADD COLUMN ordering_key TEXT;
CREATE INDEX effects_by_ordering_key ON effects (ordering_key, id);

-- The promised update time a reminder was already sent for.
ALTER TABLE incidents ADD COLUMN reminded_due INTEGER;

-- Where an incident lives in chat: its channel, its pinned card, its company-wide notices.
-- Written after a successful API call, so a retried effect finds and reuses them.
CREATE TABLE chat_refs (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    platform    TEXT NOT NULL,
    role        TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    message_id  TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (incident_id, platform, role, channel_id)
);
CREATE INDEX chat_refs_by_channel ON chat_refs (platform, channel_id, role);

-- Inbound deliveries already handled (Slack event_id, GitHub delivery id), for retries.
CREATE TABLE inbound_seen (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source, id)
);
