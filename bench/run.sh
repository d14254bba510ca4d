#!/usr/bin/env bash
# Benchmarks pg_rfm against its peers (PostgreSQL built-ins, pandas + scikit-learn) and
# writes BENCHMARKS.md. Not a test: run on demand.
#
#   bench/run.sh                  # default scale: 10M invoice lines, 1M customers, scaling to 100M lines (~25 min)
#   bench/run.sh --quick          # 1M lines, 100k customers, 3 repetitions (a few minutes)
#   bench/run.sh --lines 100000000  # every pair at 100M lines
#   bench/run.sh --only P1,P2     # a subset (P0 R1 P1 P2 P3 P3b P4 P4b P4c P5 CLV E B N scaling)
#
# Installs numpy, pandas, scikit-learn and psycopg into target/pyenv (once), builds the
# release extension, starts a throwaway PostgreSQL 15 cluster with PostgreSQL's default
# settings and stops it at the end.
source "$(dirname "$0")/../scripts/lib.sh"

args=()
out="$ROOT/BENCHMARKS.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) args+=(--lines 1000000 --p3-customers 100000 --p4-rows 1000000 --clv-customers 100000 --exp-customers 100000 --exp-lines 1000000 --basket-lines 200000 --basket-big-lines 1000000 --reps 3
                        --scaling-lines 1000000 --scaling-customers 100000)
                 out="$ROOT/target/BENCHMARKS-quick.md" ;;
        --out) out=$2; shift ;;
        *) args+=("$1") ;;
    esac
    shift
done

ensure_deps
install_extension
build_generator
ensure_pyenv numpy pandas scikit-learn scipy lifetimes statsmodels mlxtend 'psycopg[binary]'
# PostgreSQL's default settings (work_mem 4MB, shared_buffers 128MB), as a user has them;
# rows that tune a session say so.
start_cluster --defaults
trap stop_cluster EXIT
# Older OpenBLAS builds need OPENBLAS_CORETYPE on some CPUs; a current numpy runs slower
# with it, so the peer runs without it (the setting is only for this command).
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE RFM_GEN="$RFM_GEN" PGDATABASE=postgres \
    "$PYENV/bin/python" "$ROOT/bench/bench.py" --out "$out" "${args[@]}"
