#!/usr/bin/env bash
# Runs every test of pg_rfm: static checks (rustfmt, clippy), the numeric core's unit tests (cargo test), the SQL tests
# (pg_regress golden files in tests/) and the end-to-end tests (pytest in tests/e2e: a real
# client, real pg_cron, headless Chromium) against a throwaway PostgreSQL 15 cluster with the
# release build installed. Installs what is missing first. Exit code 0 only if all pass.
#
#   scripts/test.sh            # everything
#   scripts/test.sh rfm iqr    # only these SQL test files (setup always runs first), no e2e
#   scripts/test.sh isolation  # only the isolation specs (tests/specs), no e2e
source "$(dirname "$0")/lib.sh"

ensure_deps

log "static checks (cargo fmt --check, cargo clippy -D warnings)"
(cd "$ROOT" && cargo fmt --all --check >/dev/null) || { (cd "$ROOT" && cargo fmt --all --check | head -40); echo "cargo fmt --check: run cargo fmt"; exit 1; }
(cd "$ROOT" && cargo clippy --workspace --all-targets -q -- -D warnings) || { echo "cargo clippy found problems"; exit 1; }
static_passed=2

log "core unit tests (cargo test)"
core_out=$(cd "$ROOT" && cargo test --workspace --lib -q 2>&1) || { echo "$core_out"; exit 1; }
echo "$core_out" | grep -E '^test result' || true
core_passed=$(echo "$core_out" | sed -nE 's/^test result: [a-z]+\. ([0-9]+) passed.*/\1/p' | awk '{s += $1} END {print s + 0}')

install_extension
build_generator
ensure_pyenv pytest 'psycopg[binary]' scikit-learn numpy lifetimes
start_cluster
trap stop_cluster EXIT

# Test data: the demo generator at a small, fixed size and seed.
export RFM_DATA="$CLUSTER_DIR/retail_lines.tsv"
"$RFM_GEN" --lines 120000 --customers 1500 --seed 7 >"$RFM_DATA" 2>/dev/null
chmod 644 "$RFM_DATA"

run_isolation=yes
if [ $# -gt 0 ]; then
    run_isolation=no
    schedule="$CLUSTER_DIR/schedule"
    printf 'test: setup\n' >"$schedule"
    for t in "$@"; do
        case "$t" in
            setup) ;;
            isolation) run_isolation=yes ;;
            *) printf 'test: %s\n' "$t" >>"$schedule" ;;
        esac
    done
else
    schedule="$ROOT/tests/schedule"
fi

log "SQL tests (pg_regress)"
out="$ROOT/tests/out"
rm -rf "$out" && mkdir -p "$out"
set +e
"$PGXS_DIR/test/regress/pg_regress" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --inputdir="$ROOT/tests" --outputdir="$out" --schedule="$schedule" \
    --dbname=rfm_regress --load-extension=pg_rfm | tee "$out/summary.txt"
regress_status=${PIPESTATUS[0]}
set -e

if [ "$run_isolation" = yes ]; then
    # Concurrent sessions, step by step (tests/specs/*.spec; expected output in tests/expected).
    log "isolation tests (pg_isolation_regress)"
    mkdir -p "$out/isolation"
    set +e
    "$PGXS_DIR/test/isolation/pg_isolation_regress" \
        --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --inputdir="$ROOT/tests" --outputdir="$out/isolation" --schedule="$ROOT/tests/isolation_schedule" \
        --dbname=rfm_isolation --load-extension=pg_rfm | tee "$out/isolation/summary.txt"
    isolation_status=${PIPESTATUS[0]}
    set -e
    cat "$out/isolation/summary.txt" >>"$out/summary.txt"
    if [ "$isolation_status" != 0 ] && ! grep -qE '\.\.\. FAILED' "$out/isolation/summary.txt"; then
        regress_status=$isolation_status
        echo "pg_isolation_regress failed" >>"$out/summary.txt"
    fi
fi

sql_passed=$(grep -cE '\.\.\. ok' "$out/summary.txt" || true)
sql_failed=$(grep -cE '\.\.\. FAILED|failed \(ignored\)' "$out/summary.txt" || true)
if [ "$regress_status" != 0 ] && [ "$sql_failed" = 0 ]; then
    sql_failed=1 # pg_regress itself failed (for example a missing expected file)
fi
for diffs in "$out/regression.diffs" "$out/isolation/regression.diffs"; do
    if [ -s "$diffs" ]; then
        log "differences (first 300 lines of $diffs)"
        head -n 300 "$diffs"
    fi
done

if [ $# -eq 0 ]; then
    # A real Citus cluster (coordinator and two workers) for tests/e2e/test_citus.py.
    ensure_citus
    if [ -z "$CITUS_SKIP" ]; then
        start_citus
        trap 'stop_citus; stop_cluster' EXIT
        export RFM_CITUS_PORT=${CITUS_PORTS[0]} RFM_CITUS_WORKER_PORTS="${CITUS_PORTS[1]},${CITUS_PORTS[2]}" RFM_CITUS_DIR=$CITUS_DIR
    else
        log "Citus tests skipped: $CITUS_SKIP"
        export RFM_CITUS_SKIP="$CITUS_SKIP"
    fi
    log "end-to-end tests (pytest: psycopg client, pg_cron, headless Chromium, Citus)"
    set +e
    PGBIN="$PGBIN" RFM_GEN="$RFM_GEN" RFM_TEST_OUT="$out" "$PYENV/bin/python" -m pytest -q -rs -p no:cacheprovider "$ROOT/tests/e2e" \
        | tee "$out/e2e.txt"
    e2e_status=${PIPESTATUS[0]}
    set -e
    e2e_passed=$(sed -nE 's/^(.*[^0-9])?([0-9]+) passed.*/\2/p' "$out/e2e.txt" | tail -n1)
    e2e_failed=$(sed -nE 's/^(.*[^0-9])?([0-9]+) (failed|errors?)( |,|$).*/\2/p' "$out/e2e.txt" | tail -n1)
    e2e_passed=${e2e_passed:-0} e2e_failed=${e2e_failed:-0}
    if [ "$e2e_status" != 0 ] && [ "$e2e_failed" = 0 ]; then e2e_failed=1; fi
else
    e2e_passed=0 e2e_failed=0
fi

# No backend may have crashed and no Rust panic may have reached a log (also the Citus nodes').
# (SIGKILL is exempt: tests/e2e/test_zz_crash.py kills a training backend on purpose.)
crash_re='terminated by signal [0-8]([^0-9]|$)|terminated by signal (1[0-9]|[2-9][0-9])|panicked at|PANIC:'
logs=("$CLUSTER_DIR/server.log")
[ -n "${CITUS_DIR:-}" ] && logs+=("$CITUS_DIR"/*.log)
crashes=$(cat "${logs[@]}" | grep -cE "$crash_re" || true)
if [ "$crashes" != 0 ]; then
    log "server logs show crashes or panics:"
    grep -hE "$crash_re" "${logs[@]}" | head -20
    sql_failed=$((sql_failed + 1))
fi

echo "static: $static_passed passed; core: $core_passed passed; sql: $sql_passed passed, $sql_failed failed; e2e: $e2e_passed passed, $e2e_failed failed"
echo "$((static_passed + core_passed + sql_passed + e2e_passed)) passed, $((sql_failed + e2e_failed)) failed"
[ "$sql_failed" = 0 ] && [ "$e2e_failed" = 0 ] && [ "$sql_passed" -gt 0 ]
