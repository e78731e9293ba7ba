-- Freeze targets (issue 10, an honest status): verified_at is now the time of the last
-- successful read of GitHub's actual state (0 = never read), and a failure no longer moves
-- it. The last failure, retryable or not, keeps its own time, and the next retry its time
-- when known (GitHub's wait, else the reconcile's next scheduled run).
ALTER TABLE freeze_targets ADD COLUMN error_at BIGINT;
ALTER TABLE freeze_targets ADD COLUMN retry_at BIGINT;

-- Whether the freeze status on a commit was a drill's: a real freeze's status replaces a
-- drill's even though both are `failure`.
ALTER TABLE freeze_pr_statuses ADD COLUMN drill INTEGER NOT NULL DEFAULT 0;
