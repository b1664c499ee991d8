#!/usr/bin/env python3
"""bench/chaos's webhook: a small HTTP server on 127.0.0.1 for the soak's http kinds.

    webhook.py PORT_FILE CALLS_LOG

Listens on a free loopback port (written to PORT_FILE once listening) and answers
POST /hook/LABEL (LABEL: the worker configuration that called). For each call it appends
"job attempt label start_us end_us OUTCOME" to CALLS_LOG, where OUTCOME is ok:200, fail:500 or
snooze:503. Most calls sleep 20-400 ms and answer 200 with {"hook", "attempt", "seq"} (the job's
result); some answer 500 (a retry) or 503 with Retry-After: 1 (a snooze). Stops on SIGTERM.
"""
import json
import os
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, calls_log = sys.argv[1], sys.argv[2]
lock = threading.Lock()
seq = 0


def now_us():
    return time.time_ns() // 1000


class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # no access log on stderr
        pass

    def do_POST(self):
        global seq
        start = now_us()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            job = json.loads(body)
            job_id, attempt = int(job["id"]), int(job["attempt"])
        except (ValueError, KeyError, TypeError):
            self.answer(400, {"error": "not a job"})
            return
        label = self.path.rsplit("/", 1)[-1] or "-"
        time.sleep(random.uniform(0.02, 0.4))
        r = random.random()
        with lock:
            seq += 1
            n = seq
        if r < 0.06:
            code, outcome, extra = 503, "snooze", {"Retry-After": "1"}
        elif r < 0.14:
            code, outcome, extra = 500, "fail", {}
        else:
            code, outcome, extra = 200, "ok", {}
        # Logged before the answer: a worker frozen or killed after it still ran this call.
        with lock, open(calls_log, "a") as f:
            f.write(f"{job_id} {attempt} {label} {start} {now_us()} {outcome}:{code}\n")
        self.answer(code, {"hook": label, "attempt": attempt, "seq": n}, extra)

    def answer(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the worker went away (killed or timed out)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
