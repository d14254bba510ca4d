#!/usr/bin/env bash
# Measures pg_rfm's aggregates on a Citus cluster (a coordinator and two workers on this
# machine) against the same rows in a plain table: which queries run on the shards whole,
# which are gathered to the coordinator, and what that costs. Prints a markdown table (the
# numbers in docs/production.md, "Citus"). Not a test: run on demand.
#
#   bench/citus.sh [--lines N]     # default 1,000,000 invoice lines, 32 shards
source "$(dirname "$0")/../scripts/lib.sh"

lines=1000000
while [ $# -gt 0 ]; do
    case "$1" in
        --lines) lines=$2; shift ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

ensure_deps
install_extension
build_generator
ensure_pyenv 'psycopg[binary]'
ensure_citus
[ -z "$CITUS_SKIP" ] || { echo "$CITUS_SKIP" >&2; exit 1; }
start_citus
trap stop_citus EXIT
"$PYENV/bin/python" "$ROOT/bench/citus.py" --port "${CITUS_PORTS[0]}" --lines "$lines" --gen "$RFM_GEN"
