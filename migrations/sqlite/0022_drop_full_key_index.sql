-- Every query by ordering key looks only at unfinished effects, and uses
-- effects_active_by_key (0021). The index on every effect's key was written on each insert
-- and read by nothing: a page more in the WAL for every effect queued.
DROP INDEX IF EXISTS effects_by_ordering_key;
