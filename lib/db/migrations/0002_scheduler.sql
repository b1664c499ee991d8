-- taskq schema, version 2: what taskq-schedulerd needs beyond version 1. {schema} is replaced by
-- the quoted schema name. Released: never edit this file; add a new migration instead.

-- Where the lease holder runs, for `taskctl leader`.
ALTER TABLE {schema}.leases
  ADD COLUMN host text    NOT NULL DEFAULT '',
  ADD COLUMN pid  integer NOT NULL DEFAULT 0;

-- The whole job template of a schedule (so `taskctl cron trigger` needs no config file), and a
-- pause that the leader honours in the same transaction as each fire.
ALTER TABLE {schema}.periodic
  ADD COLUMN priority     smallint NOT NULL DEFAULT 5,
  ADD COLUMN max_attempts integer  NOT NULL DEFAULT 25,
  ADD COLUMN timeout_ms   bigint,
  ADD COLUMN tags         text[],
  ADD COLUMN paused_at    timestamptz;

-- Jobs running past their timeout (the scheduler fails those whose worker is stuck).
CREATE INDEX jobs_running_timeout_idx ON {schema}.jobs (attempted_at)
  WHERE state = 'running' AND timeout_ms IS NOT NULL;
