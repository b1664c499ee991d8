-- taskq schema, version 3: live job events for taskq-apid's event streams. {schema} is replaced
-- by the quoted schema name, {schema_name} by the bare one. Released: never edit this file; add a
-- new migration instead.
--
-- A change of a job's state, attempt or progress is announced on the channel "<schema>_events"
-- when some apid watches it: an apid with event streams open keeps a row in event_listeners
-- (the queues its streams follow, or all of them) and one row per followed job in
-- event_watched_jobs. Anything else costs the triggers one look at the tiny event_listeners
-- table: no transaction pays for a NOTIFY (PostgreSQL serializes the commits of notifying
-- transactions) or for building events nobody reads.
--
-- Payload: a JSON array of entries [op, id, queue, kind, state, attempt, progress], at most
-- ~7,700 bytes (NOTIFY's limit is 8,000), in as many notifications as needed, in id order:
--   op "s": the state or attempt changed (or the job was inserted); state is the new one
--   op "p": the progress changed; progress is the new value (its message dropped past 2,000 bytes)
--   op "d": a running job's row was deleted at completion (worker.delete_completed)

-- One row per apid with event streams open. Each apid rewrites its row when what it follows
-- changes, renews it while it has streams and deletes it when they are gone. A row left by a
-- killed apid expires by itself (and its watched jobs with it, for the triggers).
CREATE TABLE {schema}.event_listeners (
  name       text PRIMARY KEY,
  host       text        NOT NULL,
  pid        integer     NOT NULL,
  streams    integer     NOT NULL DEFAULT 0,
  queues     text[]      NOT NULL DEFAULT '{}',
  all_queues boolean     NOT NULL DEFAULT false,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

-- The jobs that per-job streams follow, by listener: an index probe per changed row, whatever
-- the number of streams.
CREATE TABLE {schema}.event_watched_jobs (
  job_id   bigint NOT NULL,
  listener text   NOT NULL REFERENCES {schema}.event_listeners (name) ON DELETE CASCADE,
  PRIMARY KEY (job_id, listener)
);
CREATE INDEX event_watched_jobs_listener_idx ON {schema}.event_watched_jobs (listener);

-- Sends entries (JSON array texts, in order) in notifications of at most ~7,700 bytes: an entry
-- belongs to the 4,000-byte window its end falls in, and no entry is longer than ~3,700 bytes
-- (a progress value of at most 2,000 bytes, and a queue and a kind of at most 128 bytes each,
-- which JSON escaping makes at most six times longer). Entries are built as text: measured on
-- 10,000-row updates, building them as jsonb cost twice as much.
CREATE FUNCTION {schema}.notify_job_events(entries text[]) RETURNS void LANGUAGE sql AS $$
  SELECT count(pg_notify('{schema_name}_events', '[' || chunk || ']'))::int FROM (
    SELECT string_agg(e, ',' ORDER BY ord) AS chunk FROM (
      SELECT e, ord, sum(octet_length(e) + 1) OVER (ORDER BY ord) AS upto
      FROM unnest(entries) WITH ORDINALITY AS t(e, ord)) sized
    GROUP BY (upto - 1) / 4000) chunks;
$$;

CREATE FUNCTION {schema}.events_wanted() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM {schema}.event_listeners WHERE expires_at > now());
$$;

-- One entry: [op, id, queue, kind, state, attempt, progress] as JSON text. STABLE like to_json,
-- so that it is inlined into the triggers' queries (IMMUTABLE is not, and cost 4x as much).
CREATE FUNCTION {schema}.job_event(op text, id bigint, queue text, kind text, state text, attempt integer,
                                   progress jsonb) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT '["' || op || '",' || id || ',' || to_json(queue) || ',' || to_json(kind) || ',"' || state || '",' ||
         attempt || ',' ||
         CASE WHEN progress IS NULL THEN 'null'
              WHEN octet_length(progress::text) <= 2000 THEN progress::text
              ELSE jsonb_build_object('percent', progress -> 'percent', 'at', progress -> 'at',
                                      'message_truncated', true)::text END || ']';
$$;

-- Each trigger first looks for a live listener (the only cost while no stream is open), then
-- reads what the listeners follow: every queue, some queues, jobs by id (written out in each
-- query: a SQL function holding the lookup is not inlined, and ran once per row at 20x the cost).
--
-- The triggers' queries are planned once per session, for the row counts of the first statement
-- (often one row), and reused for statements of a thousand rows. A join of the old and new rows
-- planned as a nested loop is then quadratic (measured: the drain fell to a fifth), so it is a
-- FULL JOIN, which PostgreSQL runs only as a hash or merge join, behind OFFSET 0 so that no outer
-- condition turns it back into an inner join. (EXECUTE, planned at each call, cost 0.3 ms a
-- statement; a function-level SET enable_nestloop = off, 90 ms.)
CREATE FUNCTION {schema}.jobs_inserted_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  w_all boolean;
  w_queues text[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM {schema}.event_listeners WHERE expires_at > now()) THEN RETURN NULL; END IF;
  SELECT bool_or(l.all_queues), (SELECT array_agg(q) FROM {schema}.event_listeners l2, unnest(l2.queues) q
                                 WHERE l2.expires_at > now())
    INTO w_all, w_queues FROM {schema}.event_listeners l WHERE l.expires_at > now();
  -- New jobs cannot be followed by id yet: only queues matter.
  IF NOT (w_all OR w_queues IS NOT NULL) THEN RETURN NULL; END IF;
  PERFORM {schema}.notify_job_events(array_agg(
    {schema}.job_event('s', n.id, n.queue, n.kind, n.state, n.attempt, NULL) ORDER BY n.id))
  FROM new_jobs n WHERE w_all OR n.queue = ANY (w_queues)
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.jobs_updated_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  w_all boolean;
  w_queues text[];
  w_jobs boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM {schema}.event_listeners WHERE expires_at > now()) THEN RETURN NULL; END IF;
  SELECT bool_or(l.all_queues), (SELECT array_agg(q) FROM {schema}.event_listeners l2, unnest(l2.queues) q
                                 WHERE l2.expires_at > now()),
         EXISTS (SELECT 1 FROM {schema}.event_watched_jobs w JOIN {schema}.event_listeners l3 ON l3.name = w.listener
                 WHERE l3.expires_at > now())
    INTO w_all, w_queues, w_jobs FROM {schema}.event_listeners l WHERE l.expires_at > now();
  IF NOT (w_all OR w_queues IS NOT NULL OR w_jobs) THEN RETURN NULL; END IF;
  PERFORM {schema}.notify_job_events(array_agg(x.e ORDER BY c.id, x.op_order))
  FROM (SELECT n.id, n.queue, n.kind, n.state, n.attempt, n.progress,
               o.state AS old_state, o.attempt AS old_attempt, o.progress AS old_progress
        FROM new_jobs n FULL JOIN old_jobs o ON o.id = n.id OFFSET 0) c
  CROSS JOIN LATERAL (
    SELECT 0 AS op_order, {schema}.job_event('p', c.id, c.queue, c.kind, c.state, c.attempt, c.progress) AS e
    WHERE c.progress IS NOT NULL AND c.progress IS DISTINCT FROM c.old_progress
    UNION ALL
    SELECT 1, {schema}.job_event('s', c.id, c.queue, c.kind, c.state, c.attempt, NULL)
    WHERE c.state <> c.old_state OR c.attempt <> c.old_attempt) x
  WHERE c.id IS NOT NULL AND (w_all OR c.queue = ANY (w_queues) OR (w_jobs AND c.id IN (
    SELECT w.job_id FROM {schema}.event_watched_jobs w JOIN {schema}.event_listeners l ON l.name = w.listener
    WHERE l.expires_at > now())))
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.jobs_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM {schema}.event_listeners WHERE expires_at > now()) THEN RETURN NULL; END IF;
  PERFORM {schema}.notify_job_events(array_agg(
    {schema}.job_event('d', o.id, o.queue, o.kind, 'completed', o.attempt, NULL) ORDER BY o.id))
  FROM old_jobs o
  WHERE o.state = 'running' AND (EXISTS (SELECT 1 FROM {schema}.event_listeners l WHERE l.expires_at > now()
                                         AND (l.all_queues OR o.queue = ANY (l.queues)))
                                 OR o.id IN (SELECT w.job_id FROM {schema}.event_watched_jobs w
                                             JOIN {schema}.event_listeners l ON l.name = w.listener
                                             WHERE l.expires_at > now()))
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;

-- Statement-level: one call per statement (a claim or a batch of outcomes), whatever its size.
CREATE TRIGGER jobs_inserted_events AFTER INSERT ON {schema}.jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_inserted_events();
CREATE TRIGGER jobs_updated_events AFTER UPDATE ON {schema}.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_updated_events();
CREATE TRIGGER jobs_deleted_events AFTER DELETE ON {schema}.jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION {schema}.jobs_deleted_events();
