-- bench/chaos: the tables its checks read, filled by COPY from the run's files (check.sql).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS chaos_check CASCADE;
CREATE SCHEMA chaos_check;
SET search_path = chaos_check;
-- The handler's log (bench/chaos.d/handler): one start line per run, one end line when it ended
-- on its own or by SIGTERM (a run killed by SIGKILL has none).
CREATE TABLE run_starts (job bigint, attempt int, pid int, ppid int, start_us bigint, mode text);
CREATE TABLE run_ends (job bigint, attempt int, pid int, start_us bigint, end_us bigint, outcome text, code int);
-- The webhook's log (bench/chaos.d/webhook.py): one line per call, label = the calling worker.
CREATE TABLE calls (job bigint, attempt int, label text, start_us bigint, end_us bigint, outcome text, code int);
CREATE TABLE faults (type text, target text, pid text, start_us bigint, end_us bigint, detail text);
CREATE TABLE procs (label text, pid int, start_us bigint);          -- every daemon start
CREATE TABLE acks (src text, key text, id text);                    -- enqueues answered with success
CREATE TABLE unacked (src text, key text, reason text);             -- enqueues given up on
CREATE TABLE deaths (label text, pid int, at_us bigint);            -- daemons that died on their own
CREATE TABLE exits (label text, pid int, rc text);                  -- exit status after SIGTERM
CREATE TABLE daemons (label text, peak_kib bigint, log_bytes bigint, error_lines int, first_error text);
