#!/usr/bin/env bash
# Builds the .deb from a build tree with cpack (the fixture of the package tests).
# Usage: build_deb.sh CPACK BUILD_DIR OUT_DIR EXPECTED_DEB
set -euo pipefail
cpack=$1 build=$2 out=$3 expected=$4

command -v dpkg-shlibdeps >/dev/null || { echo "dpkg-shlibdeps is missing: install dpkg-dev (scripts/deps)" >&2; exit 1; }
rm -rf "$out"
"$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$out"
[[ -f $expected ]] || { echo "cpack did not write $expected; $out holds:" >&2; ls -l "$out" >&2; exit 1; }
echo "built $expected"
