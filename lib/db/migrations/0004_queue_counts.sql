-- taskq schema, version 4: job counts by queue and state kept up to date by the jobs table's
-- own triggers, so that stats (/metrics, /v1/stats, /v1/queues, taskctl stats) read a few rows
-- per queue instead of counting every job. {schema} is replaced by the quoted schema name,
-- {schema_name} by the bare one. Released: never edit this file; add a new migration instead.
--
-- Writers never wait on each other for the counts: each statement that inserts, deletes or
-- changes the state of jobs appends its net changes to queue_count_deltas (insert only, no
-- index, no row another transaction could hold). A fold moves the deltas into queue_counts in
-- one statement; one fold at a time runs (a transaction-level advisory lock taken with try, so
-- nobody ever waits for it), from about one statement in 64 and from each stats read. The
-- count of (queue, state) is then the sum of its queue_counts row and its unfolded deltas, which
-- one snapshot always sees consistently: a fold commits its delete and its upsert together.

CREATE TABLE {schema}.queue_counts (
  queue text   NOT NULL,
  state text   NOT NULL,
  n     bigint NOT NULL,
  PRIMARY KEY (queue, state)
);

CREATE TABLE {schema}.queue_count_deltas (
  queue text   NOT NULL,
  state text   NOT NULL,
  n     bigint NOT NULL
);

-- Moves every delta into queue_counts when no other fold runs; returns whether it folded.
CREATE FUNCTION {schema}.fold_queue_counts() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF NOT pg_try_advisory_xact_lock(7346571, hashtext('{schema_name}.queue_counts')) THEN RETURN false; END IF;
  WITH gone AS (DELETE FROM {schema}.queue_count_deltas RETURNING queue, state, n),
  net AS (SELECT queue, state, sum(n)::bigint AS n FROM gone GROUP BY queue, state)
  INSERT INTO {schema}.queue_counts (queue, state, n)
  SELECT queue, state, n FROM net ORDER BY queue, state
  ON CONFLICT (queue, state) DO UPDATE SET n = {schema}.queue_counts.n + EXCLUDED.n;
  DELETE FROM {schema}.queue_counts WHERE n = 0;
  RETURN true;
END
$$;

-- The triggers group the statement's rows (no join, so no plan can turn quadratic): +1 per new
-- row, -1 per old row, by queue and state; an update that changes no state (progress, a
-- heartbeat-time field) nets to nothing and writes nothing.
CREATE FUNCTION {schema}.jobs_inserted_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {schema}.queue_count_deltas (queue, state, n)
  SELECT queue, state, count(*) FROM new_jobs GROUP BY queue, state;
  IF random() < 1.0 / 64 THEN PERFORM {schema}.fold_queue_counts(); END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.jobs_updated_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {schema}.queue_count_deltas (queue, state, n)
  SELECT queue, state, sum(n) FROM (
    SELECT queue, state, count(*) AS n FROM new_jobs GROUP BY queue, state
    UNION ALL
    SELECT queue, state, -count(*) FROM old_jobs GROUP BY queue, state) c
  GROUP BY queue, state HAVING sum(n) <> 0;
  IF random() < 1.0 / 64 THEN PERFORM {schema}.fold_queue_counts(); END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.jobs_deleted_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {schema}.queue_count_deltas (queue, state, n)
  SELECT queue, state, -count(*) FROM old_jobs GROUP BY queue, state;
  IF random() < 1.0 / 64 THEN PERFORM {schema}.fold_queue_counts(); END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.jobs_truncated_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {schema}.queue_count_deltas;
  DELETE FROM {schema}.queue_counts;
  RETURN NULL;
END
$$;

-- No write may slip between the first count and the triggers.
LOCK TABLE {schema}.jobs IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER jobs_inserted_counts AFTER INSERT ON {schema}.jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_inserted_counts();
CREATE TRIGGER jobs_updated_counts AFTER UPDATE ON {schema}.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_updated_counts();
CREATE TRIGGER jobs_deleted_counts AFTER DELETE ON {schema}.jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_deleted_counts();
CREATE TRIGGER jobs_truncated_counts AFTER TRUNCATE ON {schema}.jobs
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_truncated_counts();

INSERT INTO {schema}.queue_counts (queue, state, n)
SELECT queue, state, count(*) FROM {schema}.jobs GROUP BY queue, state;
