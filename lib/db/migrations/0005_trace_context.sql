-- taskq schema, version 5: W3C trace context on jobs. {schema} is replaced by the quoted schema
-- name. Released: never edit this file; add a new migration instead.
--
-- traceparent is the W3C traceparent (version 00) of whoever enqueued the job: its trace id and
-- the caller's span as parent id. Every attempt runs as a child span of it, with a span id of
-- its own. tracestate is the caller's tracestate, verbatim (NULL when none was given).
--
-- The library's enqueue paths give every job a traceparent (the caller's, or a new trace from
-- getrandom); the column's default covers rows inserted without one (the short form of the COPY
-- stream, and SQL written by hand): a new trace from gen_random_uuid(). Jobs inserted before
-- this migration keep NULL (adding a column with a volatile default would rewrite the table):
-- the worker starts a new trace for each of their attempts.

CREATE FUNCTION {schema}.new_traceparent() RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT '00-' || replace(gen_random_uuid()::text, '-', '') || '-' ||
         left(replace(gen_random_uuid()::text, '-', ''), 16) || '-01'
$$;

ALTER TABLE {schema}.jobs ADD COLUMN traceparent text, ADD COLUMN tracestate text;
ALTER TABLE {schema}.jobs ALTER COLUMN traceparent SET DEFAULT {schema}.new_traceparent();
