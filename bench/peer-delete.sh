#!/usr/bin/env bash
# bench/peer.sh with delete_completed = true (completed jobs are deleted, as graphile-worker does).
exec env DELETE_COMPLETED=1 "$(dirname "${BASH_SOURCE[0]}")/peer.sh"
