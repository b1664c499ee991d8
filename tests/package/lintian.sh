#!/usr/bin/env bash
# lintian reports nothing on the package: every tag is fixed or overridden with its reason in
# packaging/debian/lintian-overrides (installed as /usr/share/lintian/overrides/taskq).
# Usage: lintian.sh DEB
set -euo pipefail
deb=$1

command -v lintian >/dev/null || { echo "lintian is missing: install it (scripts/deps)" >&2; exit 1; }
# (Its note that running as root is not recommended is not about the package.)
out=$(lintian --display-info --pedantic --fail-on error,warning,info,pedantic "$deb" 2>&1) && rc=0 || rc=$?
out=$(grep -vx 'running with root privileges is not recommended!' <<<"$out" || true)
echo "$out"
if (( rc != 0 )); then
  echo "lintian: exit status $rc; fix the tags above or explain them in packaging/debian/lintian-overrides" >&2
  exit 1
fi
# Overrides that match nothing any more are reported as "mismatched-override" (info): fail on it.
if grep -q . <<<"$out"; then
  echo "lintian printed something (above): clean means no output" >&2
  exit 1
fi
echo "lintian: clean"
