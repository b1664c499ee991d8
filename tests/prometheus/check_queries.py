#!/usr/bin/env python3
"""The Grafana dashboard and the alerting rules ask only for series taskq exports, in PromQL that
parses: every expression becomes a recording rule of a temporary file that `promtool check rules`
must accept, and every taskq_* / process_* name in it must be listed in docs/metrics.md.
Usage: check_queries.py SOURCE_DIR PROMTOOL WORK_DIR"""
import json
import pathlib
import re
import subprocess
import sys

src, promtool, work = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
documented = set(re.findall(r"`((?:taskq|process)_[a-z_]+)`", (src / "docs/metrics.md").read_text()))

exprs = []
dashboard = json.loads((src / "config/grafana/taskq-dashboard.json").read_text())
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        exprs.append((f"dashboard panel '{panel['title']}'", target["expr"]))
rules_text = (src / "config/prometheus/taskq-rules.yml").read_text()
for name in re.findall(r"(?:taskq|process)_[a-z_]+", rules_text):
    exprs.append(("config/prometheus/taskq-rules.yml", name))

problems = []
for where, expr in exprs:
    for name in re.findall(r"\b(?:taskq|process)_[a-z_]+", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in documented and base not in documented:
            problems.append(f"{where}: {name} is not a series of docs/metrics.md")

work.mkdir(parents=True, exist_ok=True)
rules = work / "dashboard-queries.yml"
with rules.open("w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (where, expr) in enumerate(exprs):
        if where.startswith("dashboard"):
            f.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(expr)}\n")
check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
if check.returncode != 0:
    problems.append("promtool refuses a dashboard query:\n" + check.stdout + check.stderr)

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(exprs)} queries checked against {len(documented)} documented series")
