-- "Is this the first unfinished effect of its ordering key?" (the claim) and "which unfinished
-- effect of my key do I wait for?" (queueing) look only at pending and running effects. The
-- index on (ordering_key, id) made both walk every finished effect of a key as well, so a
-- busy key (a company-wide channel's notices) cost more with every notice ever sent: half a
-- millisecond per claim after a few thousand declarations. This index holds only the
-- unfinished ones.
CREATE INDEX effects_active_by_key ON effects (ordering_key, id) WHERE state IN ('pending', 'running');
