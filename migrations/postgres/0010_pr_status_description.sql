-- The description firebreak last wrote with a commit's freeze status: a status whose text
-- changed (the holding incident resolved, another still holds) is written again, not
-- skipped because its state is the same.
ALTER TABLE freeze_pr_statuses ADD COLUMN description TEXT;
