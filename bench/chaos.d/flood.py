#!/usr/bin/env python3
"""bench/chaos's connection flood: flood.py PORT COUNT SECONDS

Opens up to COUNT idle TCP connections to 127.0.0.1:PORT (never another address), holds them
for SECONDS, then closes them all. Prints one JSON line: {"asked", "opened", "failed",
"held_s"}. Bounded: COUNT is capped by the open-files limit (raised to its hard limit) and
every connect has a 2 s deadline.
"""
import json
import resource
import socket
import sys
import time

port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = hard
except (ValueError, OSError):
    pass
count = max(0, min(count, soft - 64))
socks, failed = [], 0
deadline = time.monotonic() + 15
for _ in range(count):
    if time.monotonic() > deadline:
        break
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        failed += 1
        s.close()
opened_at = time.monotonic()
time.sleep(seconds)
held = time.monotonic() - opened_at
for s in socks:
    s.close()
print(json.dumps({"asked": int(sys.argv[2]), "opened": len(socks), "failed": failed, "held_s": round(held, 1)}))
