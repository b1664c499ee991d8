-- bench/chaos's checks over the soak's jobs (schema chaos) and logs (schema chaos_check, see
-- load.sql). Prints one JSON object.
SET search_path = chaos_check;

-- Every handler run: exec runs from the handler's log (ppid = the worker's pid), http calls from
-- the webhook's log (the worker's pid: the one holding that label when the call began).
CREATE TABLE runs AS
SELECT s.job, s.attempt, s.pid, s.ppid, s.start_us, e.end_us, COALESCE(e.outcome, 'killed') AS outcome, e.code,
       s.mode, 'exec' AS via,
       (SELECT p.label FROM procs p WHERE p.pid = s.ppid ORDER BY p.start_us DESC LIMIT 1) AS label
  FROM run_starts s LEFT JOIN run_ends e USING (job, attempt, pid, start_us)
UNION ALL
SELECT c.job, c.attempt, NULL, (SELECT p.pid FROM procs p WHERE p.label = c.label AND p.start_us <= c.start_us
                                ORDER BY p.start_us DESC LIMIT 1),
       c.start_us, c.end_us, c.outcome, c.code, 'hook', 'http', c.label
  FROM calls c;

-- The failed attempts the database recorded (errors of every job).
CREATE TABLE errs AS
SELECT j.id AS job, (x.e->>'attempt')::int AS attempt, x.e->>'message' AS message,
       (x.e->>'exit_status')::int AS exit_status, x.ord,
       (extract(epoch FROM (x.e->>'at')::timestamptz) * 1000000)::bigint AS at_us
  FROM chaos.jobs j, jsonb_array_elements(COALESCE(j.errors, '[]')) WITH ORDINALITY AS x(e, ord)
 WHERE jsonb_typeof(x.e) = 'object' AND x.e ? 'attempt';

-- Each run judged against what the database holds for its job and attempt:
--   snoozed       it asked to run again later (exit 75, or 503 + Retry-After)
--   recorded      the job's record for this attempt is this run's outcome
--   discarded     its outcome is not recorded ("worker lost", or no record at all) and the job
--                 moved on: the job ran again because of this run, a duplicate to explain
--   contradicted  the record for this attempt says something else than this run did
--   pending       the job is not finished (see not_terminal)
CREATE TABLE judged AS
SELECT r.*, j.kind, j.state AS job_state, j.attempt AS job_attempt, e.message AS err_message,
       e.exit_status AS err_exit, e.at_us AS err_at_us,
       CASE
         WHEN j.id IS NULL THEN 'contradicted'
         WHEN j.state IN ('scheduled', 'available', 'running') THEN 'pending'
         WHEN r.outcome = 'snooze' THEN 'snoozed'
         WHEN j.state = 'cancelled' AND j.attempt = r.attempt THEN 'recorded'
         WHEN e.message LIKE 'worker lost%' THEN 'discarded'
         WHEN r.outcome = 'ok' AND j.state = 'completed' AND j.attempt = r.attempt THEN
           CASE WHEN r.via = 'exec' AND r.mode = 'work' AND (j.result->>'pid')::int IS DISTINCT FROM r.pid
                  THEN 'contradicted'
                WHEN r.via = 'http' AND (j.result->>'attempt')::int IS DISTINCT FROM r.attempt THEN 'contradicted'
                ELSE 'recorded' END
         WHEN e.message IS NULL THEN
           CASE WHEN j.attempt = r.attempt AND j.state = 'failed' THEN 'contradicted' ELSE 'discarded' END
         -- An error is recorded for this attempt: does it say what this run did?
         WHEN r.mode NOT IN ('work', 'hook') THEN 'recorded'  -- hostile: whatever the worker made of it
         WHEN r.outcome = 'killed' OR r.outcome = 'term' THEN
           CASE WHEN e.message ILIKE '%timed out%' OR e.message ILIKE '%cancel%' THEN 'recorded' ELSE 'contradicted' END
         WHEN r.via = 'exec' AND r.outcome IN ('fail', 'perm') AND e.exit_status = r.code THEN 'recorded'
         WHEN r.via = 'http' AND r.outcome = 'fail' THEN 'recorded'
         ELSE 'contradicted'
       END AS verdict
  FROM runs r
  LEFT JOIN chaos.jobs j ON j.id = r.job
  LEFT JOIN LATERAL (SELECT * FROM errs WHERE errs.job = r.job AND errs.attempt = r.attempt
                     ORDER BY errs.ord DESC LIMIT 1) e ON true;

-- A discarded run is explained by a kill -9 of its worker after it started, or by a SIGSTOP of its
-- worker that began before its outcome could be written and ended after it started.
CREATE TABLE explained AS
SELECT d.job, d.attempt, d.via, d.label, d.ppid, d.start_us, d.end_us, d.outcome, d.err_message,
       (SELECT f.type || ' ' || f.target || ' (pid ' || f.pid || ') at ' ||
               to_char(to_timestamp(f.start_us / 1e6) AT TIME ZONE 'UTC', 'HH24:MI:SS')
          FROM faults f
         WHERE f.pid = d.ppid::text
           AND ((f.type = 'kill9' AND f.start_us >= d.start_us)
             OR (f.type = 'stop_worker' AND f.end_us >= d.start_us
                 AND f.start_us <= COALESCE(d.end_us, f.start_us) + 2000000))
         ORDER BY f.start_us LIMIT 1) AS fault
  FROM judged d WHERE d.verdict = 'discarded';

-- Two runs of one attempt where the first did not snooze.
CREATE TABLE same_attempt AS
SELECT * FROM (SELECT r.*, lag(r.outcome) OVER w AS prev_outcome, lag(r.start_us) OVER w AS prev_start_us,
                      lag(r.label) OVER w AS prev_label
                 FROM runs r WINDOW w AS (PARTITION BY r.job, r.via, r.attempt ORDER BY r.start_us)) x
 WHERE x.prev_start_us IS NOT NULL AND x.prev_outcome IS DISTINCT FROM 'snooze';

-- Outcomes overwritten by a stale attempt, or a final state that is not the final attempt's.
CREATE TABLE stale AS
SELECT job, 'run of attempt ' || attempt || ' (' || via || ', ' || outcome || COALESCE(':' || code, '') ||
       ') contradicts the job: ' || job_state || ' at attempt ' || job_attempt ||
       COALESCE(', error for that attempt: ' || left(err_message, 80), '') AS reason
  FROM judged WHERE verdict = 'contradicted'
UNION ALL
SELECT j.id, 'completed at attempt ' || j.attempt || ' but no run of that attempt ended ok (result ' ||
       left(COALESCE(j.result::text, 'null'), 60) || ')'
  FROM chaos.jobs j
 WHERE j.state = 'completed' AND j.kind IN ('chaos-work', 'chaos-hook')
   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job = j.id AND r.attempt = j.attempt AND r.outcome = 'ok')
UNION ALL
SELECT j.id, 'failed with its last error from attempt ' || e.attempt || ', not its final attempt ' || j.attempt
  FROM chaos.jobs j JOIN LATERAL (SELECT * FROM errs WHERE errs.job = j.id ORDER BY ord DESC LIMIT 1) e ON true
 WHERE j.state = 'failed' AND e.attempt <> j.attempt
UNION ALL
SELECT job, count(*) || ' errors recorded for attempt ' || attempt
  FROM errs GROUP BY job, attempt HAVING count(*) > 1;

CREATE TABLE jobs_ack AS
SELECT a.src, a.key, NULLIF(a.id, '')::bigint AS ack_id,
       (SELECT array_agg(j.id ORDER BY j.id) FROM chaos.jobs j WHERE j.unique_key = a.key) AS ids
  FROM acks a;

SELECT json_build_object(
  'passed', (SELECT count(*) FROM chaos.jobs WHERE state IN ('scheduled', 'available', 'running')) = 0
        AND (SELECT count(*) FROM jobs_ack WHERE ids IS NULL OR (ack_id IS NOT NULL AND NOT ack_id = ANY (ids))) = 0
        AND (SELECT count(*) FROM stale) = 0
        AND (SELECT count(*) FROM deaths) = 0
        AND (SELECT count(*) FROM exits WHERE rc <> '0') = 0
        AND (SELECT count(*) FROM explained WHERE fault IS NULL) = 0
        AND (SELECT count(*) FROM same_attempt) = 0,
  'jobs', json_build_object(
    'total', (SELECT count(*) FROM chaos.jobs),
    'by_state', (SELECT json_object_agg(state, n) FROM (SELECT state, count(*) n FROM chaos.jobs GROUP BY state) s),
    'by_kind', (SELECT json_agg(k ORDER BY k.kind) FROM (
                 SELECT kind, count(*) AS total, count(*) FILTER (WHERE state = 'completed') AS completed,
                        count(*) FILTER (WHERE state = 'failed') AS failed,
                        count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                        count(*) FILTER (WHERE state NOT IN ('completed', 'failed', 'cancelled')) AS unfinished
                   FROM chaos.jobs GROUP BY kind) k),
    'periodic', (SELECT count(*) FROM chaos.jobs WHERE unique_key LIKE 'periodic:%')),
  'enqueue', json_build_object(
    'acknowledged', (SELECT count(*) FROM acks),
    'by_source', (SELECT json_object_agg(src, n) FROM (SELECT src, count(*) n FROM acks GROUP BY src) s),
    'given_up', (SELECT count(*) FROM unacked),
    'given_up_but_present', (SELECT count(*) FROM unacked u WHERE EXISTS (SELECT 1 FROM chaos.jobs j WHERE j.unique_key = u.key)),
    'lost', (SELECT count(*) FROM jobs_ack WHERE ids IS NULL),
    'lost_keys', (SELECT json_agg(key) FROM (SELECT key FROM jobs_ack WHERE ids IS NULL LIMIT 20) x),
    'id_mismatch', (SELECT json_agg(json_build_object('key', key, 'acknowledged_id', ack_id, 'ids', ids))
                      FROM (SELECT * FROM jobs_ack WHERE ack_id IS NOT NULL AND ids IS NOT NULL
                            AND NOT ack_id = ANY (ids) LIMIT 20) x),
    'keys_enqueued_twice', (SELECT count(*) FROM jobs_ack WHERE cardinality(ids) > 1)),
  'not_terminal', json_build_object(
    'count', (SELECT count(*) FROM chaos.jobs WHERE state IN ('scheduled', 'available', 'running')),
    'by_kind', (SELECT json_object_agg(k, n) FROM (SELECT kind || ' ' || state AS k, count(*) n FROM chaos.jobs
                 WHERE state IN ('scheduled', 'available', 'running') GROUP BY 1 ORDER BY 1) x),
    'jobs', (SELECT json_agg(x) FROM (SELECT id, kind, queue, state, attempt, worker_id, attempted_at
                                        FROM chaos.jobs WHERE state IN ('scheduled', 'available', 'running')
                                       ORDER BY id LIMIT 30) x)),
  'stale_overwrites', json_build_object(
    'count', (SELECT count(*) FROM stale),
    'jobs', (SELECT json_agg(x) FROM (SELECT * FROM stale ORDER BY job LIMIT 30) x)),
  'runs', json_build_object(
    'exec', (SELECT count(*) FROM runs WHERE via = 'exec'),
    'http', (SELECT count(*) FROM runs WHERE via = 'http'),
    'by_verdict', (SELECT json_object_agg(verdict, n) FROM (SELECT verdict, count(*) n FROM judged GROUP BY verdict) s),
    'duplicates', (SELECT count(*) FROM explained),
    'duplicates_by_fault', (SELECT json_object_agg(t, n) FROM (SELECT COALESCE(split_part(fault, ' ', 1), 'UNEXPLAINED') t,
                                                                    count(*) n FROM explained GROUP BY 1) s),
    'unexplained', (SELECT count(*) FROM explained WHERE fault IS NULL),
    'unexplained_runs', (SELECT json_agg(x) FROM (
        SELECT job, attempt, via, label, ppid AS worker_pid,
               to_char(to_timestamp(start_us / 1e6) AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS started,
               to_char(to_timestamp(end_us / 1e6) AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS ended, outcome,
               left(err_message, 120) AS recorded_error
          FROM explained WHERE fault IS NULL ORDER BY start_us LIMIT 30) x),
    'same_attempt_twice', (SELECT count(*) FROM same_attempt),
    'same_attempt_runs', (SELECT json_agg(x) FROM (
        SELECT job, attempt, via, prev_label || ' then ' || label AS workers, prev_outcome, outcome
          FROM same_attempt ORDER BY start_us LIMIT 30) x),
    'jobs_with_more_runs_than_attempts', (SELECT count(*) FROM (
        SELECT r.job FROM runs r JOIN chaos.jobs j ON j.id = r.job WHERE r.outcome <> 'snooze'
         GROUP BY r.job, j.attempt HAVING count(*) > j.attempt) x)),
  'hostile', (SELECT json_agg(h ORDER BY h.kind) FROM (
      SELECT kind, json_object_agg(state, n) AS states, max(sample) AS last_error
        FROM (SELECT kind, state, count(*) n,
                     max(left(COALESCE(errors->-1->>'message', ''), 120)) AS sample
                FROM chaos.jobs WHERE queue = 'hostile' GROUP BY kind, state) s GROUP BY kind) h),
  'faults', json_build_object(
    'by_type', (SELECT json_object_agg(type, n) FROM (SELECT type, count(*) n FROM faults GROUP BY type) s),
    'probes', (SELECT json_agg(json_build_object('type', type, 'detail', detail) ORDER BY start_us)
                 FROM faults WHERE type IN ('lock', 'flood', 'stop_leader', 'terminate'))),
  'daemons', (SELECT json_agg(json_build_object('label', d.label, 'peak_rss_mb', round(d.peak_kib / 1024.0, 1),
                                                'log_mb', round(d.log_bytes / 1048576.0, 2), 'exit', x.rc,
                                                'error_lines', d.error_lines, 'first_error', d.first_error,
                                                'starts', (SELECT count(*) FROM procs p WHERE p.label = d.label))
                              ORDER BY d.label)
                FROM daemons d LEFT JOIN exits x USING (label)),
  'deaths', (SELECT json_agg(json_build_object('label', label, 'pid', pid,
               'at', to_char(to_timestamp(at_us / 1e6) AT TIME ZONE 'UTC', 'HH24:MI:SS'))) FROM deaths)
);
