-- An effect with an ordering key names the earlier unfinished effect of that key it waits
-- for, set when it is queued and cleared when that one finishes. The claim then looks only
-- at effects waiting for nothing, through a partial index, instead of checking every queued
-- effect's predecessors on every claim (which grew with the backlog).
ALTER TABLE effects ADD COLUMN after_effect BIGINT;
UPDATE effects SET after_effect = (
    SELECT MAX(p.id) FROM effects p
    WHERE p.ordering_key = effects.ordering_key AND p.id < effects.id
      AND p.state IN ('pending', 'running'))
WHERE ordering_key IS NOT NULL AND state IN ('pending', 'running');
CREATE INDEX effects_after ON effects (after_effect) WHERE after_effect IS NOT NULL;
CREATE INDEX effects_ready ON effects (run_at, id) WHERE state = 'pending' AND after_effect IS NULL;
CREATE INDEX effects_leased ON effects (lease_until) WHERE state = 'running';
