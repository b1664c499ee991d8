#!/usr/bin/env bash
# The package holds what it should, where and with which modes; its control data (conffiles,
# Depends, maintainer scripts) is right. Read with dpkg-deb only: nothing is installed.
# Usage: contents.sh DEB SOURCE_DIR VERSION
set -euo pipefail
deb=$1 src=$2 version=$3

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- control fields
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(basename "$deb") == "taskq_${version}_amd64.deb" ]] || fail "file name $(basename "$deb")"
[[ $(field Package) == taskq ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version), expected the project version $version"
[[ $(field Architecture) == amd64 ]] || fail "Architecture: $(field Architecture)"
for f in Maintainer Section Priority Description; do
  [[ -n $(field "$f") ]] || fail "no $f field"
done

# --- files: "MODE OWNER PATH" for every path the package must hold (dpkg-deb -c lists them)
listing=$tmp/listing
dpkg-deb -c "$deb" | awk '{ sub(/^\.\//, "/", $6); print $1, $2, $6 }' >"$listing"
expect() {
  grep -qxF -- "$1 root/root $2" "$listing" || fail "expected $1 root/root $2; the package has: $(grep -F -- " $2" "$listing" || echo nothing)"
}
for p in taskctl taskq-apid taskq-schedulerd taskq-workerd; do
  expect -rwxr-xr-x "/usr/bin/$p"
done
expect -rw-r--r-- /usr/share/man/man1/taskctl.1.gz
expect -rw-r--r-- /usr/share/man/man5/taskq.toml.5.gz
for p in taskq-apid taskq-schedulerd taskq-workerd; do
  expect -rw-r--r-- "/usr/share/man/man8/$p.8.gz"
done
for u in taskq-apid.service taskq-schedulerd.service taskq-workerd@.service; do
  expect -rw-r--r-- "/lib/systemd/system/$u"
done
# Not world-readable even before postinst gives it to group taskq: it may hold a password.
expect -rw-r----- /etc/taskq/taskq.toml
expect -rw-r--r-- /usr/share/doc/taskq/copyright
expect -rw-r--r-- /usr/share/doc/taskq/changelog.gz
awk '$2 != "root/root"' "$listing" | grep . && fail "entries above are not owned by root/root"
awk '$1 ~ /^d/ && $1 != "drwxr-xr-x"' "$listing" | grep . && fail "directories above are not 0755"
grep -E ' /usr/share/man/.*[^z]$' "$listing" | grep -v '/$' && fail "man pages above are not gzip-compressed"

# --- file contents
dpkg-deb -x "$deb" "$tmp/root"
cmp "$tmp/root/etc/taskq/taskq.toml" "$src/config/taskq.example.toml" || fail "/etc/taskq/taskq.toml is not the example config"
for u in "$src"/config/systemd/*.service; do
  cmp "$tmp/root/lib/systemd/system/${u##*/}" "$u" || fail "unit ${u##*/} differs from config/systemd/"
done
# gzip -n: no file name (FLG bit 3) and no time stamp (MTIME) in the header, so builds repeat.
for gz in "$tmp"/root/usr/share/man/*/*.gz "$tmp/root/usr/share/doc/taskq/changelog.gz"; do
  header=$(od -An -tx1 -N8 "$gz" | tr -d ' \n')
  [[ ${header:0:4} == 1f8b ]] || fail "${gz#"$tmp/root"} is not gzip"
  (( (0x${header:6:2} & 0x08) == 0 )) || fail "${gz#"$tmp/root"} stores a file name (gzip without -n)"
  [[ ${header:8:8} == 00000000 ]] || fail "${gz#"$tmp/root"} stores a time stamp (gzip without -n)"
done
zcat "$tmp/root/usr/share/doc/taskq/changelog.gz" | awk 'NR == 1' | grep -qF "taskq ($version) " ||
  fail "changelog.gz does not start with the entry for $version"
awk 'NR == 1' "$tmp/root/usr/share/doc/taskq/copyright" | grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
  fail "copyright is not in the machine-readable format"
for p in taskctl taskq-apid taskq-schedulerd taskq-workerd; do
  sections=$(readelf -S -W "$tmp/root/usr/bin/$p")
  grep -qE ' \.(debug_info|symtab) ' <<<"$sections" && fail "/usr/bin/$p is not stripped"
done

# --- conffiles
dpkg-deb -e "$deb" "$tmp/control"
[[ $(cat "$tmp/control/conffiles") == /etc/taskq/taskq.toml ]] ||
  fail "conffiles is '$(cat "$tmp/control/conffiles")', expected /etc/taskq/taskq.toml"

# --- Depends: runtime packages only, covering every shared library the programs load
depends=$(field Depends)
echo "Depends: $depends"
grep -qE -- '-dev\b' <<<"$depends" && fail "Depends names a -dev package"
names=" $(tr ',|' '\n' <<<"$depends" | sed -E 's/\(.*\)//; s/:.*//; s/ //g' | tr '\n' ' ') "
for pkg in adduser libc6 libpq5; do
  [[ $names == *" $pkg "* ]] || fail "Depends lacks $pkg"
done
# The package owning a library file, under any of its names (merged /usr: /lib is /usr/lib).
owner_of() {
  local real candidate
  real=$(readlink -f "$1")
  for candidate in "$1" "$real" "${1#/usr}" "${real#/usr}" "/usr$1" "/usr$real"; do
    dpkg -S "$candidate" 2>/dev/null | awk -F: 'NR == 1 { print $1 }' | grep . && return 0
  done
  return 1
}
for p in taskctl taskq-apid taskq-schedulerd taskq-workerd; do
  for soname in $(readelf -d "$tmp/root/usr/bin/$p" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p'); do
    path=$(ldconfig -p | awk -v s="$soname" '!found && $1 == s && /x86-64/ { print $NF; found = 1 }')
    [[ -n $path ]] || { fail "$p needs $soname, which ldconfig does not know"; continue; }
    owner=$(owner_of "$path") || { fail "$p needs $soname ($path), which no package owns"; continue; }
    # Depends may name the package or a virtual package it provides (libspdlog1.10-fmt9).
    provides=$(dpkg-query -W -f='${Provides}' "$owner" | tr ',' '\n' | sed -E 's/\(.*\)//; s/:.*//; s/ //g')
    ok=0
    for name in "$owner" $provides; do
      [[ $names == *" $name "* ]] && ok=1
    done
    ((ok)) || fail "$p needs $soname from $owner, which Depends lacks"
  done
done

# --- maintainer scripts
for s in postinst prerm postrm; do
  [[ -x $tmp/control/$s ]] || fail "no executable $s"
done
grep -qE '^\s*adduser --system --group ' "$tmp/control/postinst" || fail "postinst does not create the taskq system user"
# shellcheck disable=SC2016  # a literal $config in the script
grep -qE '^\s*chown root:taskq "\$config"' "$tmp/control/postinst" || fail "postinst does not give the config to group taskq"
# Nothing is enabled or started on install: the config names no database yet.
grep -nE '(systemctl|deb-systemd-invoke)[^#]*\b(start|restart|reload-or-restart)\b|\benable\b|invoke-rc\.d' \
  "$tmp/control/postinst" | grep -v 'try-restart' && fail "postinst enables or starts a service (lines above)"

if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "package contents: all checks passed"
