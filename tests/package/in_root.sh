#!/usr/bin/env bash
# Run by install_root.sh inside the throwaway root: install, check, reinstall, remove, purge.
# systemctl is a stub that logs its arguments, and /run/systemd/system exists, so the maintainer
# scripts act as under systemd and the test sees every systemctl call they make.
# Usage: in_root.sh DEB VERSION
set -euo pipefail
deb=$1 version=$2
config=/etc/taskq/taskq.toml
log=/tmp/systemctl.log

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
step() { echo "== $*"; }

mkdir -p /run/systemd/system
# Act like a host, not a container image: no policy-rc.d forbidding service actions. And no man
# database rebuild after each dpkg run (slow, and not what is tested).
rm -f /usr/sbin/policy-rc.d
rm -f /var/lib/man-db/auto-update
cat >/usr/local/sbin/systemctl <<STUB
#!/bin/sh
echo "\$*" >>$log
STUB
chmod 755 /usr/local/sbin/systemctl
: >"$log"

if getent passwd taskq >/dev/null; then
  echo "FAIL: this machine has a taskq user: the test cannot see postinst create it" >&2
  exit 1
fi

step "dpkg -i (Depends checked against this machine's packages)"
dpkg -i "$deb"
[[ $(dpkg-query -W -f='${Status} ${Version}' taskq) == "install ok installed $version" ]] ||
  fail "dpkg-query: $(dpkg-query -W -f='${Status} ${Version}' taskq)"

step "the taskq system user and group"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd taskq) || fail "no user taskq"
(( uid < 1000 )) || fail "taskq has uid $uid, not a system uid"
[[ $(getent group taskq | cut -d: -f3) == "$gid" ]] || fail "the primary group of taskq is not group taskq"
[[ $home == /var/lib/taskq ]] || fail "home of taskq is $home"
[[ $shell == /usr/sbin/nologin ]] || fail "shell of taskq is $shell"
[[ $(stat -c '%U:%G %a' "$config") == "root:taskq 640" ]] || fail "$config is $(stat -c '%U:%G %a' "$config")"

step "no service enabled or started on install"
[[ $(cat "$log") == "--system daemon-reload" ]] || fail "postinst ran: systemctl $(cat "$log")"

step "the programs run from /usr/bin"
for p in taskctl taskq-workerd taskq-schedulerd taskq-apid; do
  [[ $(command -v "$p") == /usr/bin/$p ]] || fail "$p is not /usr/bin/$p"
done
out=$(taskctl --version) || fail "taskctl --version: exit status $?"
echo "$out"
[[ $out == *"$version"* ]] || fail "taskctl --version does not print $version"
for d in taskq-workerd taskq-schedulerd; do
  # As the services run them: user taskq, reading the config through group taskq.
  out=$(runuser -u taskq -- "$d" --check-config --config "$config" 2>&1) && rc=0 || rc=$?
  echo "$out"
  (( rc == 0 )) || fail "$d --check-config as taskq: exit status $rc"
  [[ $out == *"$config: OK"* ]] || fail "$d --check-config does not say $config: OK"
  [[ $out != *warn* ]] || fail "$d --check-config warns about the installed config"
done
# The API refuses to serve without tokens: the administrator adds one first (README).
out=$(runuser -u taskq -- taskq-apid --check-config --config "$config" 2>&1) && rc=0 || rc=$?
echo "$out"
if (( rc != 78 )) || [[ $out != *"api.tokens"* ]]; then
  fail "taskq-apid --check-config on the shipped config: exit status $rc, expected 78 naming api.tokens"
fi
# Other users cannot read it.
out=$(runuser -u nobody -- taskq-workerd --check-config --config "$config" 2>&1) && rc=0 || rc=$?
(( rc != 0 )) || fail "user nobody could read $config: $out"

step "man pages and units"
if command -v man >/dev/null; then
  for page in taskctl.1 taskq.toml.5 taskq-apid.8 taskq-schedulerd.8 taskq-workerd.8; do
    [[ $(man -w "${page##*.}" "${page%.*}") == "/usr/share/man/man${page##*.}/$page.gz" ]] || fail "man does not find $page"
  done
fi
out=$(systemd-analyze verify /lib/systemd/system/taskq-apid.service /lib/systemd/system/taskq-schedulerd.service \
  /lib/systemd/system/taskq-workerd@taskq.service 2>&1) || fail "systemd-analyze verify: exit status $?"
[[ -z $out ]] || fail "systemd-analyze verify: $out"

step "dpkg -i again (upgrade path): only running services are restarted"
: >"$log"
dpkg -i "$deb"
grep -vE '^(--system daemon-reload|try-restart .*)$' "$log" && fail "postinst on upgrade ran the systemctl calls above"
grep -q '^try-restart ' "$log" || fail "postinst on upgrade did not try-restart the running services"
[[ $(stat -c '%U:%G %a' "$config") == "root:taskq 640" ]] || fail "after upgrade $config is $(stat -c '%U:%G %a' "$config")"

step "dpkg -r: programs go, the edited config stays, services were stopped first"
: >"$log"
echo '# edited' >>"$config"
mkdir -p /var/lib/taskq
dpkg -r taskq
for p in taskctl taskq-workerd taskq-schedulerd taskq-apid; do
  [[ ! -e /usr/bin/$p ]] || fail "/usr/bin/$p is still there after dpkg -r"
done
[[ ! -e /lib/systemd/system/taskq-apid.service ]] || fail "the units are still there after dpkg -r"
[[ -f $config ]] || fail "dpkg -r removed the edited $config"
grep -q '^stop ' "$log" || fail "prerm did not stop the services"

step "dpkg -P: config and /var/lib/taskq go"
dpkg -P taskq
[[ ! -e /etc/taskq ]] || fail "/etc/taskq is still there after purge: $(ls -la /etc/taskq)"
[[ ! -e /var/lib/taskq ]] || fail "/var/lib/taskq is still there after purge"
dpkg-query -W -f='${Status}' taskq 2>/dev/null | grep -q installed && fail "taskq still installed after purge"

if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "install, run, upgrade, remove, purge: all checks passed"
