-- taskq schema, version 1. {schema} is replaced by the quoted schema name.
-- Released: never edit this file; add a new migration instead.
-- Empty tags, metadata and errors are stored as NULL: COPY then skips parsing '{}' per row, which
-- measured ~30% of a bulk insert's server time.

CREATE TABLE {schema}.jobs (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue               text        NOT NULL DEFAULT 'default',
  kind                text        NOT NULL,
  args                jsonb       NOT NULL DEFAULT '{}',
  state               text        NOT NULL DEFAULT 'available',
  priority            smallint    NOT NULL DEFAULT 5,
  attempt             integer     NOT NULL DEFAULT 0,
  max_attempts        integer     NOT NULL DEFAULT 25,
  run_at              timestamptz NOT NULL DEFAULT now(),
  created_at          timestamptz NOT NULL DEFAULT now(),
  attempted_at        timestamptz,
  finished_at         timestamptz,
  worker_id           bigint,
  timeout_ms          bigint,
  unique_key          text,
  tags                text[],     -- NULL: no tags
  metadata            jsonb,      -- NULL: {}
  errors              jsonb,      -- NULL: no failed attempt yet; else one entry per failed attempt
  result              jsonb,
  progress            jsonb,
  cancel_requested_at timestamptz,
  CONSTRAINT jobs_state_check CHECK (state IN ('scheduled', 'available', 'running', 'completed', 'failed', 'cancelled')),
  CONSTRAINT jobs_priority_check CHECK (priority BETWEEN 0 AND 9),
  CONSTRAINT jobs_attempt_check CHECK (attempt >= 0 AND max_attempts >= 1),
  CONSTRAINT jobs_queue_check CHECK (octet_length(queue) BETWEEN 1 AND 128),
  CONSTRAINT jobs_kind_check CHECK (octet_length(kind) BETWEEN 1 AND 128),
  CONSTRAINT jobs_timeout_check CHECK (timeout_ms IS NULL OR timeout_ms > 0),
  CONSTRAINT jobs_finished_check CHECK ((state IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

-- Claim: the next available jobs of a queue in (priority, run_at, id) order. Only ready jobs are
-- in it, so millions of scheduled jobs do not slow the fetch.
CREATE INDEX jobs_fetch_idx ON {schema}.jobs (queue, priority, run_at, id) WHERE state = 'available';
-- Promotion of due scheduled jobs (first runs and retries).
CREATE INDEX jobs_scheduled_idx ON {schema}.jobs (run_at) WHERE state = 'scheduled';
-- Running jobs by worker: rescue of dead workers' jobs, drain.
CREATE INDEX jobs_running_idx ON {schema}.jobs (worker_id) WHERE state = 'running';
-- Pruning and "finished in the last minute".
CREATE INDEX jobs_finished_idx ON {schema}.jobs (finished_at) WHERE state IN ('completed', 'failed', 'cancelled');
-- Idempotent enqueue: one live job per unique key. Cancelled and failed jobs release their key.
CREATE UNIQUE INDEX jobs_unique_key_idx ON {schema}.jobs (unique_key)
  WHERE unique_key IS NOT NULL AND state NOT IN ('cancelled', 'failed');

CREATE TABLE {schema}.queues (
  name       text PRIMARY KEY,
  paused_at  timestamptz,
  settings   jsonb       NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per live worker process; heartbeat_at tells the rescuer which are dead.
CREATE TABLE {schema}.workers (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  host         text        NOT NULL,
  pid          integer     NOT NULL,
  queues       text[]      NOT NULL DEFAULT '{}',
  concurrency  integer     NOT NULL DEFAULT 0,
  version      text        NOT NULL DEFAULT '',
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Named leader leases: a TTL row, not a session advisory lock, so it survives poolers.
CREATE TABLE {schema}.leases (
  name        text PRIMARY KEY,
  holder      text        NOT NULL,
  term        bigint      NOT NULL DEFAULT 1,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  renewed_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);

-- Periodic schedules: last and next fire time survive restarts and failover.
CREATE TABLE {schema}.periodic (
  name         text PRIMARY KEY,
  schedule     text        NOT NULL,
  timezone     text        NOT NULL DEFAULT 'UTC',
  kind         text        NOT NULL,
  queue        text        NOT NULL DEFAULT 'default',
  args         jsonb       NOT NULL DEFAULT '{}',
  last_fire_at timestamptz,
  next_fire_at timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
