-- Exemptions that end (issue 10). An exemption is one attempt at merging a pull request
-- through the freeze: `attempt` counts them, `state` says whether the current one is still
-- in progress (`pending`) or ended (`merged`, `not_merged`, `failed`), and `outcome`
-- says how, in a sentence. A new `freeze exempt` of the same pull request starts a new
-- attempt only once the current one ended; a double submit while it runs is the same one.
-- `effect_key` is the queue effect carrying the attempt now (the exemption, then its
-- merge), so an attempt whose effect gave up is known to have ended.
--
-- An exemption applies only to the head it pinned (`sha`, read from GitHub) and to the
-- freeze it was granted in: the scope and that scope's `frozen_since`, the generation at
-- which it last went from unfrozen to frozen. A push, or a new freeze, needs a new one.
-- Exemptions recorded before this bound to nothing, so they no longer apply.
ALTER TABLE freeze_scopes ADD COLUMN frozen_since BIGINT;
UPDATE freeze_scopes SET frozen_since = generation WHERE frozen = 1;

ALTER TABLE freeze_exemptions ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
ALTER TABLE freeze_exemptions ADD COLUMN state TEXT NOT NULL DEFAULT 'not_merged'
    CHECK (state IN ('pending', 'merged', 'not_merged', 'failed'));
ALTER TABLE freeze_exemptions ADD COLUMN outcome TEXT;
ALTER TABLE freeze_exemptions ADD COLUMN sha TEXT;
ALTER TABLE freeze_exemptions ADD COLUMN scope TEXT;
ALTER TABLE freeze_exemptions ADD COLUMN frozen_since BIGINT;
ALTER TABLE freeze_exemptions ADD COLUMN effect_key TEXT;
