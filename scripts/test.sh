#!/usr/bin/env bash
# Runs every test of pg_rfm: static checks (rustfmt, clippy), the numeric core's unit tests
# (cargo test), then per PostgreSQL version a throwaway cluster with the release build
# installed: on 15 the SQL tests (pg_regress golden files in tests/), the isolation specs and
# the end-to-end tests (pytest in tests/e2e: a real client, real pg_cron, headless Chromium,
# Citus); on 17 and 18 (built from Debian's source packages once, see scripts/lib.sh) the SQL
# tests, the isolation specs and the upgrade and dump tests. Installs what is missing first.
# Exit code 0 only if all pass.
#
#   scripts/test.sh                 # everything, on 15, 17 and 18
#   scripts/test.sh --pg 17         # one version: its part of the matrix (on 15: everything)
#   scripts/test.sh rfm iqr         # only these SQL test files on 15 (setup always runs first)
#   scripts/test.sh isolation       # only the isolation specs (tests/specs)
#   scripts/test.sh --pg 18 catalog # one SQL test file on one version
#   scripts/test.sh test_memory.py  # only these end-to-end files (tests/e2e) on 15
source "$(dirname "$0")/lib.sh"

only_pg=""
names=() e2e_names=()
while [ $# -gt 0 ]; do
    case "$1" in
        --pg) only_pg=${2:?--pg needs a version}; shift ;;
        --pg=*) only_pg=${1#--pg=} ;;
        *.py) e2e_names+=("$ROOT/tests/e2e/${1##*/}") ;;
        *) names+=("$1") ;;
    esac
    shift
done
if [ -n "$only_pg" ] && [[ ! " ${PG_VERSIONS[*]} " =~ " $only_pg " ]]; then
    echo "scripts/test.sh: PostgreSQL $only_pg is not in the matrix (${PG_VERSIONS[*]})" >&2
    exit 2
fi

ensure_deps

static_passed=0 core_passed=0 sql_passed=0 sql_failed=0 e2e_passed=0 e2e_failed=0
report=()

if [ -z "$only_pg" ] || [ "$only_pg" = 15 ]; then
    log "static checks (cargo fmt --check, cargo clippy -D warnings, released scripts)"
    (cd "$ROOT" && cargo fmt --all --check >/dev/null) || { (cd "$ROOT" && cargo fmt --all --check | head -40 || true); fail "cargo fmt --check found unformatted code" "run cargo fmt"; }
    (cd "$ROOT" && cargo clippy --workspace --all-targets -q -- -D warnings) || fail "cargo clippy found problems (above)" "fix them; 'cargo clippy --workspace --all-targets -- -D warnings' reproduces them"
    check_released_scripts || fail "released SQL scripts changed (above)" "released scripts are never edited: put the change into a new version with an upgrade script"
    check_released_scripts_catches || fail "the released-scripts guard did not catch an edit (above)" "fix check_released_scripts in scripts/lib.sh"
    static_passed=3

    log "core unit tests (cargo test)"
    core_out=$(cd "$ROOT" && cargo test --workspace --lib -q 2>&1) || { echo "$core_out"; fail "core unit tests failed (above)" "'cargo test --workspace --lib' reproduces them"; }
    echo "$core_out" | grep -E '^test result' || true
    core_passed=$(echo "$core_out" | sed -nE 's/^test result: [a-z]+\. ([0-9]+) passed.*/\1/p' | awk '{s += $1} END {print s + 0}')
fi

build_generator
ensure_pyenv pytest 'psycopg[binary]' scikit-learn numpy scipy lifetimes statsmodels mlxtend==0.25.0
trap 'stop_citus 2>/dev/null || true; stop_cluster; restore_build' EXIT

# Builds the packages for PostgreSQL $1 (scripts/package.sh), removes what install_extension
# put into that server and installs the package instead, with no Rust toolchain on PATH: the
# .deb with dpkg on the system's 15, the tarball's install.sh on the others. The suite then
# runs on the packaged files.
install_package() {
    local v=$1 files package lib ext no_rust=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent LC_ALL=C)
    lib=$("$PG_CONFIG" --pkglibdir)
    ext="$("$PG_CONFIG" --sharedir)/extension"
    files=$(bash "$ROOT/scripts/package.sh" --pg-config "$PG_CONFIG")
    # The .deb where the server has Debian's layout (the system's 15), else the tarball.
    if [ "$lib" = "/usr/lib/postgresql/$v/lib" ]; then
        package=$(echo "$files" | grep '\.deb$')
    else
        package=$(echo "$files" | grep '\.tar\.gz$')
    fi
    log "installing $(basename "$package") (no Rust toolchain on PATH)"
    if "${no_rust[@]}" sh -c 'command -v cargo || command -v rustc' >/dev/null; then
        fail "install_package: a Rust toolchain is on the clean PATH" "the package must install without Rust: fix no_rust in scripts/test.sh"
    fi
    if [ "${package%.deb}" != "$package" ] && ! dpkg-query -W -f='${Status}' "$DEB_NAME" 2>/dev/null | grep -q 'install ok installed'; then
        # restore_build puts the build back and removes the package after the tests.
        SAVED_BUILD=$(mktemp -d)
        mkdir -p "$SAVED_BUILD/lib" "$SAVED_BUILD/ext"
        cp "$lib/pg_rfm.so" "$SAVED_BUILD/lib/"
        cp "$ext/pg_rfm.control" "$ext"/pg_rfm--*.sql "$SAVED_BUILD/ext/"
        SAVED_LIB=$lib SAVED_EXT=$ext
        SAVED_SCRIPT=$(mktemp)
        cp "$ext/pg_rfm--$(extension_version).sql" "$SAVED_SCRIPT"
    fi
    as_root rm -f "$lib/pg_rfm.so" "$ext/pg_rfm.control" "$ext"/pg_rfm--*.sql
    if [ "${package%.deb}" != "$package" ]; then
        as_root "${no_rust[@]}" dpkg -i "$package" >/dev/null
    else
        local unpack
        unpack=$(mktemp -d)
        tar -xzf "$package" -C "$unpack"
        as_root "${no_rust[@]}" "$unpack"/pg_rfm-*/install.sh --pg-config "$PG_CONFIG" >/dev/null
        rm -rf "$unpack"
    fi
}

# After the tests on the .deb: the package is removed again and the build that
# install_extension installed is put back, so the system is left as `cargo pgrx install` (or
# scripts/demo.sh) leaves it, with no package of pg_rfm known to dpkg. (When a package of
# pg_rfm was installed before the tests, it stays, replaced by the current version's.)
DEB_NAME=postgresql-15-pg-rfm SAVED_BUILD= SAVED_SCRIPT=
DEB_WAS_INSTALLED=no
dpkg-query -W -f='${Status}' "$DEB_NAME" 2>/dev/null | grep -q 'install ok installed' && DEB_WAS_INSTALLED=yes
restore_build() {
    [ -n "$SAVED_BUILD" ] || return 0
    as_root dpkg -r "$DEB_NAME" >/dev/null
    as_root cp "$SAVED_BUILD/lib/pg_rfm.so" "$SAVED_LIB/"
    as_root cp "$SAVED_BUILD/ext/"* "$SAVED_EXT/"
    rm -rf "$SAVED_BUILD"
    SAVED_BUILD=
}

# After the tests on 15: no package of pg_rfm left for dpkg (unless one was there before),
# and the server's pg_rfm is the current build, so that a demo or `cargo pgrx install` after
# the tests runs this code.
left_as_found() {
    local lib ext built
    lib="$("$PG_CONFIG" --pkglibdir)/pg_rfm.so"
    ext="$("$PG_CONFIG" --sharedir)/extension"
    built="$CARGO_TARGET_DIR/release/libpg_rfm.so"
    [ "${RFM_BUILD:-release}" = debug ] && built="$CARGO_TARGET_DIR/debug/libpg_rfm.so"
    if [ "$DEB_WAS_INSTALLED" = yes ]; then
        log "$DEB_NAME was installed before the tests: it stays, at the current version"
        return 0
    fi
    log "the system as the tests found it: no $DEB_NAME package, the current build installed"
    if dpkg-query -W -f='${Status}' "$DEB_NAME" 2>/dev/null | grep -q 'install ok installed'; then
        echo "left_as_found: the tests left the package $DEB_NAME installed" >&2
        return 1
    fi
    if ! cmp -s "$lib" "$built"; then
        echo "left_as_found: $lib is not the current build ($built)" >&2
        return 1
    fi
    if ! cmp -s "$ext/pg_rfm--$(extension_version).sql" "$SAVED_SCRIPT"; then
        echo "left_as_found: $ext/pg_rfm--$(extension_version).sql is not the current build's install script" >&2
        return 1
    fi
}

# The first steps of a DBA on the packaged install (tests/package_check.sql), in a new database.
check_package() {
    local v=$1 result="$CLUSTER_DIR/package_check.out"
    log "package check on PostgreSQL $v: CREATE EXTENSION VERSION '0.1.0', UPDATE, rfm, rfm_train, rfm_cluster"
    "$PGBIN/createdb" rfm_package
    if "$PGBIN/psql" -X -q -d rfm_package -f "$ROOT/tests/package_check.sql" >"$result" 2>&1 \
        && grep -q 'package check passed' "$result"; then
        return 0
    fi
    cat "$result"
    return 1
}

# One version's tests: the whole suite on 15, the matrix part on the others; with SQL test
# names, only those (and the isolation specs if named).
run_suite() {
    local v=$1 out schedule run_isolation=yes regress_status isolation_status e2e_status
    local passed=0 failed=0 epassed=0 efailed=0
    use_pg "$v"
    install_extension
    [ ${#names[@]} -eq 0 ] && [ ${#e2e_names[@]} -eq 0 ] && install_package "$v"
    start_cluster
    if [ "$v" = 15 ]; then out="$ROOT/tests/out"; rm -rf "$out"; else out="$ROOT/tests/out/pg$v"; rm -rf "$out"; fi
    mkdir -p "$out"

    # Test data: the demo generator at a small, fixed size and seed.
    export RFM_DATA="$CLUSTER_DIR/retail_lines.tsv"
    "$RFM_GEN" --lines 120000 --customers 1500 --seed 7 >"$RFM_DATA" 2>/dev/null
    chmod 644 "$RFM_DATA"

    if [ ${#names[@]} -eq 0 ] && [ ${#e2e_names[@]} -eq 0 ]; then
        if check_package "$v"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    fi

    if [ ${#names[@]} -gt 0 ]; then
        run_isolation=no
        schedule="$CLUSTER_DIR/schedule"
        printf 'test: setup\n' >"$schedule"
        for t in "${names[@]}"; do
            case "$t" in
                setup) ;;
                isolation) run_isolation=yes ;;
                *) printf 'test: %s\n' "$t" >>"$schedule" ;;
            esac
        done
    else
        schedule="$ROOT/tests/schedule"
    fi

    if [ ${#e2e_names[@]} -gt 0 ] && [ ${#names[@]} -eq 0 ]; then
        run_isolation=no regress_status=0
        : >"$out/summary.txt"
    else
    log "SQL tests (pg_regress) on PostgreSQL $v"
    set +e
    "$PGXS_DIR/test/regress/pg_regress" \
        --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --inputdir="$ROOT/tests" --outputdir="$out" --schedule="$schedule" \
        --dbname=rfm_regress --load-extension=pg_rfm | tee "$out/summary.txt"
    regress_status=${PIPESTATUS[0]}
    set -e

    if [ "$run_isolation" = yes ]; then
        # Concurrent sessions, step by step (tests/specs/*.spec; expected output in tests/expected).
        log "isolation tests (pg_isolation_regress) on PostgreSQL $v"
        mkdir -p "$out/isolation"
        set +e
        "$PGXS_DIR/test/isolation/pg_isolation_regress" \
            --host="$PGHOST" --port="$PGPORT" --user=postgres \
            --inputdir="$ROOT/tests" --outputdir="$out/isolation" --schedule="$ROOT/tests/isolation_schedule" \
            --dbname=rfm_isolation --load-extension=pg_rfm | tee "$out/isolation/summary.txt"
        isolation_status=${PIPESTATUS[0]}
        set -e
        cat "$out/isolation/summary.txt" >>"$out/summary.txt"
        if [ "$isolation_status" != 0 ] && ! grep -qE '\.\.\. FAILED|^not ok [0-9]+ ' "$out/isolation/summary.txt"; then
            regress_status=$isolation_status
            echo "pg_isolation_regress failed" >>"$out/summary.txt"
        fi
    fi
    fi

    # pg_regress 15 prints "test name ... ok"; 16 and later print TAP ("ok 1 - name").
    passed=$((passed + $(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$out/summary.txt" || true)))
    failed=$((failed + $(grep -cE '\.\.\. FAILED|failed \(ignored\)|^not ok [0-9]+ ' "$out/summary.txt" || true)))
    if [ "$regress_status" != 0 ] && [ "$failed" = 0 ]; then
        failed=1 # pg_regress itself failed (for example a missing expected file)
    fi
    for diffs in "$out/regression.diffs" "$out/isolation/regression.diffs"; do
        if [ -s "$diffs" ]; then
            log "differences (first 300 lines of $diffs)"
            head -n 300 "$diffs"
        fi
    done

    if [ ${#names[@]} -eq 0 ]; then
        local e2e=("$ROOT/tests/e2e")
        [ ${#e2e_names[@]} -eq 0 ] || e2e=("${e2e_names[@]}")
        if [ "$v" = 15 ]; then
            if [ ${#e2e_names[@]} -eq 0 ] || [[ " ${e2e_names[*]} " == *test_citus.py* ]]; then
                # A real Citus cluster (coordinator and two workers) for tests/e2e/test_citus.py.
                ensure_citus
                if [ -z "$CITUS_SKIP" ]; then
                    start_citus
                    export RFM_CITUS_PORT=${CITUS_PORTS[0]} RFM_CITUS_WORKER_PORTS="${CITUS_PORTS[1]},${CITUS_PORTS[2]}" RFM_CITUS_DIR=$CITUS_DIR
                else
                    log "Citus tests skipped: $CITUS_SKIP"
                    export RFM_CITUS_SKIP="$CITUS_SKIP"
                fi
            fi
            log "end-to-end tests (pytest: psycopg client, pg_cron, headless Chromium, Citus)"
        else
            e2e=("$ROOT/tests/e2e/test_upgrade.py" "$ROOT/tests/e2e/test_dump.py")
            log "end-to-end tests on PostgreSQL $v (pytest: upgrade from 0.1.0, pg_dump and restore)"
        fi
        set +e
        PGBIN="$PGBIN" RFM_GEN="$RFM_GEN" RFM_TEST_OUT="$out" "$PYENV/bin/python" -m pytest -q -rs -p no:cacheprovider "${e2e[@]}" \
            | tee "$out/e2e.txt"
        e2e_status=${PIPESTATUS[0]}
        set -e
        epassed=$(sed -nE 's/^(.*[^0-9])?([0-9]+) passed.*/\2/p' "$out/e2e.txt" | tail -n1)
        efailed=$(sed -nE 's/^(.*[^0-9])?([0-9]+) (failed|errors?)( |,|$).*/\2/p' "$out/e2e.txt" | tail -n1)
        epassed=${epassed:-0} efailed=${efailed:-0}
        if [ "$e2e_status" != 0 ] && [ "$efailed" = 0 ]; then efailed=1; fi
    fi

    # No backend may have crashed and no Rust panic may have reached a log (also the Citus
    # nodes'). (SIGKILL is exempt: tests/e2e/test_zz_crash.py kills a training backend on purpose.)
    local crash_re='terminated by signal [0-8]([^0-9]|$)|terminated by signal (1[0-9]|[2-9][0-9])|panicked at|PANIC:'
    local logs=("$CLUSTER_DIR/server.log") crashes
    [ -n "${CITUS_DIR:-}" ] && logs+=("$CITUS_DIR"/*.log)
    crashes=$(cat "${logs[@]}" | grep -cE "$crash_re" || true)
    if [ "$crashes" != 0 ]; then
        log "server logs show crashes or panics:"
        grep -hE "$crash_re" "${logs[@]}" | head -20
        failed=$((failed + 1))
    fi
    stop_citus 2>/dev/null || true
    stop_cluster
    restore_build
    if [ "$v" = 15 ] && [ ${#names[@]} -eq 0 ] && [ ${#e2e_names[@]} -eq 0 ]; then
        if left_as_found; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    fi

    report+=("PostgreSQL $v: sql $passed passed, $failed failed; e2e $epassed passed, $efailed failed")
    sql_passed=$((sql_passed + passed)) sql_failed=$((sql_failed + failed))
    e2e_passed=$((e2e_passed + epassed)) e2e_failed=$((e2e_failed + efailed))
}

if [ -n "$only_pg" ]; then
    run_suite "$only_pg"
elif [ ${#names[@]} -gt 0 ] || [ ${#e2e_names[@]} -gt 0 ]; then
    run_suite 15
else
    for v in "${PG_VERSIONS[@]}"; do
        run_suite "$v"
    done
fi

printf '%s\n' "${report[@]}"
echo "static: $static_passed passed; core: $core_passed passed; sql: $sql_passed passed, $sql_failed failed; e2e: $e2e_passed passed, $e2e_failed failed"
echo "$((static_passed + core_passed + sql_passed + e2e_passed)) passed, $((sql_failed + e2e_failed)) failed"
[ "$sql_failed" = 0 ] && [ "$e2e_failed" = 0 ] && [ $((sql_passed + e2e_passed)) -gt 0 ]
