-- taskq schema, version 3: live job events for taskq-apid's event streams. {schema} is replaced
-- by the quoted schema name, {schema_name} by the bare one. Released: never edit this file; add a
-- new migration instead.
--
-- Every change of a job's state, attempt or progress is announced on the channel
-- "<schema>_events", but only while some apid has an event stream open (a live row in
-- event_listeners): otherwise the triggers return after one look at that tiny table, and no
-- transaction pays for a NOTIFY (PostgreSQL serializes the commits of notifying transactions).
--
-- Payload: a JSON array of entries [op, id, queue, kind, state, attempt, progress], at most
-- ~7,700 bytes (NOTIFY's limit is 8,000), in as many notifications as needed, in id order:
--   op "s": the state or attempt changed (or the job was inserted); state is the new one
--   op "p": the progress changed; progress is the new value (its message dropped past 2,000 bytes)
--   op "d": a running job's row was deleted at completion (worker.delete_completed)

-- One row per apid with event streams open; each renews its row while it has streams and
-- deletes it when they are gone. A row left by a killed apid expires by itself.
CREATE TABLE {schema}.event_listeners (
  name       text PRIMARY KEY,
  host       text        NOT NULL,
  pid        integer     NOT NULL,
  streams    integer     NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

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

CREATE FUNCTION {schema}.jobs_inserted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT {schema}.events_wanted() THEN RETURN NULL; END IF;
  PERFORM {schema}.notify_job_events(array_agg(
    {schema}.job_event('s', n.id, n.queue, n.kind, n.state, n.attempt, NULL) ORDER BY n.id))
  FROM new_jobs n HAVING count(*) > 0;
  RETURN NULL;
END
$$;

-- The join of the old and new rows is planned once per session, for the first statement's row
-- counts (often one row): a nested loop then makes a later 1,000-row statement do a million row
-- comparisons (measured: the drain fell to a fifth). Without nested loops it is a hash join.
CREATE FUNCTION {schema}.jobs_updated_events() RETURNS trigger LANGUAGE plpgsql SET enable_nestloop = off AS $$
BEGIN
  IF NOT {schema}.events_wanted() THEN RETURN NULL; END IF;
  PERFORM {schema}.notify_job_events(array_agg(e ORDER BY id, op_order))
  FROM (
    SELECT n.id, 0 AS op_order, {schema}.job_event('p', n.id, n.queue, n.kind, n.state, n.attempt, n.progress) AS e
    FROM new_jobs n JOIN old_jobs o ON o.id = n.id
    WHERE n.progress IS NOT NULL AND n.progress IS DISTINCT FROM o.progress
    UNION ALL
    SELECT n.id, 1, {schema}.job_event('s', n.id, n.queue, n.kind, n.state, n.attempt, NULL)
    FROM new_jobs n JOIN old_jobs o ON o.id = n.id
    WHERE n.state <> o.state OR n.attempt <> o.attempt) changes
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.jobs_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT {schema}.events_wanted() THEN RETURN NULL; END IF;
  PERFORM {schema}.notify_job_events(array_agg(
    {schema}.job_event('d', o.id, o.queue, o.kind, 'completed', o.attempt, NULL) ORDER BY o.id))
  FROM old_jobs o WHERE o.state = 'running' HAVING count(*) > 0;
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
