-- Signing in to the web pages with a generic OpenID Connect provider (issue 12): a person
-- known by a verified email acts as `email:<address>`, so `email` joins the timeline's
-- sources. (Slack sign-in acts as `slack:<user id>`, already a source.)
ALTER TABLE timeline_entries DROP CONSTRAINT timeline_entries_source_check;
ALTER TABLE timeline_entries ADD CONSTRAINT timeline_entries_source_check
    CHECK (source IN ('slack', 'discord', 'cli', 'github', 'system', 'api', 'email'));
