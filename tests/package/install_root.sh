#!/usr/bin/env bash
# Installs the .deb with dpkg into a throwaway root and runs the programs from there.
# The root is an overlay over this machine's / in a private mount namespace: dpkg, adduser and
# the maintainer scripts are the real ones, Depends is checked against the packages installed
# here, every change lands in a tmpfs that vanishes with the namespace. This machine's own files,
# users and dpkg database are not touched. Needs root (mount); exits 77 (skipped) without it.
# Usage: install_root.sh DEB VERSION
set -euo pipefail
deb=$1 version=$2
here=$(cd "$(dirname "$0")" && pwd)

if [[ $EUID -ne 0 ]]; then
  echo "SKIP: mounting the throwaway root needs root" >&2
  exit 77
fi
if dpkg-query -W -f='${Status}' taskq 2>/dev/null | grep -q 'installed'; then
  echo "FAIL: taskq is installed on this machine: the test needs a root without it" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# In the new mount namespace: the overlay, /dev and /proc, the package and the checks inside it.
# shellcheck disable=SC2016  # expanded by the inner shell
unshare --mount --propagation private --fork bash -euo pipefail -c '
  tmp=$1 deb=$2 here=$3 version=$4
  if ! mount -t tmpfs -o mode=0755 tmpfs "$tmp" 2>/dev/null; then
    echo "SKIP: cannot mount a tmpfs here (no CAP_SYS_ADMIN?)" >&2
    exit 77
  fi
  mkdir "$tmp/upper" "$tmp/work" "$tmp/root"
  if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$tmp/upper,workdir=$tmp/work" "$tmp/root"; then
    echo "SKIP: cannot mount an overlay over / here" >&2
    exit 77
  fi
  mount --rbind /dev "$tmp/root/dev"
  mount -t proc proc "$tmp/root/proc"
  mount -t tmpfs tmpfs "$tmp/root/run"
  mount -t tmpfs tmpfs "$tmp/root/tmp"
  cp "$deb" "$tmp/root/tmp/taskq.deb"
  cp "$here/in_root.sh" "$tmp/root/tmp/in_root.sh"
  chroot "$tmp/root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 bash /tmp/in_root.sh /tmp/taskq.deb "$version"
' install_root "$tmp" "$deb" "$here" "$version"
