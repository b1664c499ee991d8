#!/usr/bin/env bash
# taskq as a peer of ../shared/bench/peers (see its README for the contract): gets PGURL, N,
# LAT_N, LAT_RATE; prints one JSON line on stdout, progress on stderr.
#   PEERS="graphile pgboss $PWD/bench/peer.sh" ../shared/bench/peers/run.sh
# Knobs (pass as PEER_<VAR> through run.sh): CONCURRENCY (queue slots, default 1000),
# DELETE_COMPLETED (0 keep completed jobs, the default; 1 delete them at completion),
# BUILD_DIR (default build/release).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BUILD_DIR:-$root/build/release}/bench/taskq_worker_bench
[[ -x $bin ]] || { echo "peer.sh: $bin not built (cmake --preset release -DTASKQ_BUILD_TESTS=ON && cmake --build --preset release)" >&2; exit 1; }
: "${PGURL:?PGURL is required}"
exec "$bin" peer --url "$PGURL" --n "${N:-20000}" --lat-n "${LAT_N:-200}" --lat-rate "${LAT_RATE:-50}" \
  --concurrency "${CONCURRENCY:-1000}" --delete-completed "${DELETE_COMPLETED:-0}"
