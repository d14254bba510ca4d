# Shared shell functions for scripts/demo.sh, scripts/test.sh and bench/. Source, don't run.
# Idempotent: every step checks before it installs or builds.

set -eEuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------------------- failures
# No step fails silently: any command that fails (set -e) prints which command, where
# (script, line, function and who called it) and what to do (the hint of the step that was
# running, set with step_hint), then the script exits with that command's status. The ERR
# trap is inherited by functions, command substitutions and subshells (set -E); a failure is
# reported once, by the innermost shell that saw it.
# Colors only on a terminal (CI and logs get plain text).
if [ -t 2 ]; then RFM_BOLD=$'\033[1m' RFM_RED=$'\033[1;31m' RFM_OFF=$'\033[0m'; else RFM_BOLD= RFM_RED= RFM_OFF=; fi
RFM_HINT=
RFM_ERR_MARK=${TMPDIR:-/tmp}/pg_rfm_err.$$
step_hint() { RFM_HINT=$*; }
on_error() {
    local status=$1 command=$2 i where=""
    shift 2
    # A wrapper's "$@" (as_root, as_pg) is shown as the command it ran.
    command=${command//'"$@"'/$*}
    # The trap runs whatever errexit says; where a script turned it off (set +e) to read a
    # status itself, or in a command substitution (which does not inherit it), the caller decides.
    case $- in *e*) ;; *) return 0 ;; esac
    [ -e "$RFM_ERR_MARK" ] && { [ "$BASH_SUBSHELL" = 0 ] && rm -f "$RFM_ERR_MARK"; exit "$status"; }
    for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
        case ${FUNCNAME[$i]:-} in as_root | as_pg) continue ;; esac
        where+="${where:+ <- }${BASH_SOURCE[$i]#"$ROOT"/}:${BASH_LINENO[$((i - 1))]}"
        [ "${FUNCNAME[$i]:-main}" = main ] || where+=" (${FUNCNAME[$i]})"
    done
    {
        printf '\n%sFAILED%s (exit status %s): %s\n' "$RFM_RED" "$RFM_OFF" "$status" "$command"
        printf '  at: %s\n' "$where"
        printf '  what to do: %s\n' "${RFM_HINT:-read the messages above; rerun with 'bash -x $0' to see every command}"
    } >&2
    [ "$BASH_SUBSHELL" = 0 ] || : >"$RFM_ERR_MARK"
    exit "$status"
}
trap 'on_error $? "$BASH_COMMAND" "$@"' ERR
# fail MESSAGE: a failure found by a check rather than by a command's status.
fail() {
    printf '\n%sFAILED%s: %s\n  at: %s:%s (%s)\n  what to do: %s\n' "$RFM_RED" "$RFM_OFF" "$1" \
        "${BASH_SOURCE[1]#"$ROOT"/}" "${BASH_LINENO[0]}" "${FUNCNAME[1]:-main}" \
        "${2:-${RFM_HINT:-read the messages above}}" >&2
    [ "$BASH_SUBSHELL" = 0 ] || : >"$RFM_ERR_MARK"
    exit 1
}

# The system PostgreSQL 15 (Debian's packages) is the default; use_pg switches to another.
PG_MAJOR=15
PG15_CONFIG=${PG_CONFIG:-$(head -n1 "$ROOT/pgrx-config/pg_config")}
PG_CONFIG=$PG15_CONFIG
PGBIN=$("$PG_CONFIG" --bindir 2>/dev/null || dirname "$PG_CONFIG")
PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs 2>/dev/null || echo /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk)")/..
# PostgreSQL versions the tests run on: the whole suite on the first, the version matrix
# (pg_regress, isolation, upgrade and dump tests) on the others, built from Debian's source
# packages into PG_CACHE once (see ensure_pg).
PG_VERSIONS=(15 17 18)
if [ "$(id -u)" = 0 ]; then
    PG_CACHE=${RFM_PG_CACHE:-/var/cache/pg_rfm}
else
    PG_CACHE=${RFM_PG_CACHE:-$HOME/.cache/pg_rfm}
fi
# Where `cargo install` puts cargo-pgrx: $CARGO_HOME/bin, by default ~/.cargo/bin.
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac
# Nothing from an earlier session's environment: libpq settings would send psql, pg_regress
# and the tests to another server or database (start_cluster sets PGHOST, PGPORT, PGUSER), a
# CARGO_TARGET_DIR would put the build where these scripts do not look, and RUST_BACKTRACE
# in a server's environment puts backtraces into error DETAILs.
unset PGDATABASE PGSERVICE PGSERVICEFILE PGOPTIONS PGPASSWORD PGPASSFILE PGHOSTADDR PGSSLMODE \
      PGCONNECT_TIMEOUT PGAPPNAME PGDATA PGTZ PGDATESTYLE PGCLIENTENCODING PGTARGETSESSIONATTRS
export CARGO_TARGET_DIR="$ROOT/target"

# log MESSAGE: a new step starts (and the previous step's hint no longer applies).
log() { RFM_HINT=; printf '%s==> %s%s\n' "$RFM_BOLD" "$*" "$RFM_OFF" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Runs a PostgreSQL server binary as the OS user that owns clusters (the server refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Installs the Debian packages given that are not installed yet; $1 says what they are for.
ensure_debs() {
    local what=$1 missing=() p
    shift
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages$what: ${missing[*]}"
        step_hint "apt-get could not install ${missing[*]}: check that this machine reaches a Debian mirror ('apt-get update' by hand shows why), then rerun"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_deps() {
    ensure_debs "" postgresql-15 postgresql-server-dev-15 libclang-dev sudo postgresql-15-cron chromium
    if ! cargo pgrx --version 2>/dev/null | grep -q '0\.18\.1'; then
        log "installing cargo-pgrx 0.18.1 (about 6 minutes, once)"
        step_hint "cargo could not install cargo-pgrx 0.18.1: check access to crates.io and the compiler error above; 'cargo install cargo-pgrx --version 0.18.1 --locked' by hand reproduces it"
        cargo install cargo-pgrx --version 0.18.1 --locked
    fi
    pgrx_init 15 "$PG_CONFIG"
}

# Makes pgrx know PostgreSQL $1 at pg_config $2 (pgrx builds only for the versions in its
# config.toml); `cargo pgrx init` rewrites the file, so it gets every version it already
# knows and still finds. Works from nothing: no PGRX_HOME directory, an empty one, or a
# config.toml without configs (which `cargo pgrx init` itself refuses to read).
pgrx_init() {
    local home=${PGRX_HOME:-$HOME/.pgrx} args=() v path
    local config="$home/config.toml"
    grep -qs "^pg$1 = \"$2\"" "$config" && return 0
    for v in "${PG_VERSIONS[@]}"; do
        path=
        if [ "$v" = "$1" ]; then
            path=$2
        elif [ -f "$config" ]; then
            path=$(sed -nE "s/^pg$v = \"(.*)\"$/\1/p" "$config")
        fi
        if [ -n "$path" ] && [ -x "$path" ]; then args+=("--pg$v=$path"); fi
    done
    if [ -f "$config" ] && ! grep -qs '^\[configs\]' "$config"; then
        log "moving aside $config: it has no [configs] table, so cargo pgrx init cannot read it"
        mv "$config" "$config.unreadable.$(date +%s)"
    fi
    mkdir -p "$home"
    log "pointing pgrx at ${args[*]} (${config})"
    step_hint "run 'cargo pgrx init ${args[*]}' by hand to see its error; PGRX_HOME=$home"
    cargo pgrx init "${args[@]}" >/dev/null
    grep -qs "^pg$1 = \"$2\"" "$config" || fail "cargo pgrx init did not record pg$1 = \"$2\" in $config"
}

# PostgreSQL 17 or 18, built from the upstream source in Debian's source package (trixie
# has postgresql-17, sid postgresql-18; no current suite has 16) into $PG_CACHE/pgNN, once:
# later runs reuse it. A private sources list and lists directory leave the system's apt
# configuration as it is. About 3 minutes on 2 cores.
ensure_pg() {
    local v=$1 suite prefix="$PG_CACHE/pg$1"
    [ "$v" = 15 ] && return 0
    if [ -x "$prefix/bin/pg_config" ] \
        && [ -x "$(dirname "$("$prefix/bin/pg_config" --pgxs)")/../test/isolation/pg_isolation_regress" ]; then
        return 0
    fi
    case "$v" in
        17) suite=trixie ;;
        18) suite=sid ;;
        *) fail "PostgreSQL $v: not supported here" "use 15 (Debian's packages), 17 or 18 (built from Debian's source packages)" ;;
    esac
    ensure_debs " to build PostgreSQL $v" build-essential bison flex libreadline-dev zlib1g-dev libicu-dev pkg-config
    local work="$PG_CACHE/build-$v"
    as_root rm -rf "$work"
    as_root mkdir -p "$work/lists/partial"
    echo "deb-src http://deb.debian.org/debian $suite main" | as_root tee "$work/sources.list" >/dev/null
    local apt=(apt-get -q -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
               -o "Dir::State::Lists=$work/lists")
    log "PostgreSQL $v: fetching Debian's source package postgresql-$v ($suite)"
    as_root "${apt[@]}" update -qq
    (cd "$work" && as_root "${apt[@]}" source --download-only "postgresql-$v" 2>&1 | grep -vE '^(Reading|Need|Get|Fetched|Download|W: Download)' >&2 || true)
    local orig
    orig=$(ls "$work"/postgresql-"$v"_*.orig.tar.* 2>/dev/null | head -n1 || true)
    if [ -z "$orig" ]; then
        # The mirror may lag the suite's index (seen: trixie listing 17.12 while the pool had
        # 17.9 to 17.11): take the newest earlier minor release the pool has, with the same
        # Debian revision, and check its tarball against the checksum in its .dsc.
        local index minor rev base dsc sum
        index=$("${apt[@]/apt-get/apt-cache}" showsrc "postgresql-$v" 2>/dev/null | sed -nE 's/^Version: (.*)$/\1/p' | head -n1)
        minor=$(echo "$index" | sed -nE "s/^$v\.([0-9]+)-.*/\1/p")
        rev=${index#*-}
        base="http://deb.debian.org/debian/pool/main/p/postgresql-$v"
        while [ -n "$minor" ] && [ "$minor" -gt 0 ]; do
            minor=$((minor - 1))
            dsc=$(curl -fsS -m 60 "$base/postgresql-${v}_$v.$minor-${rev//+/%2b}.dsc" 2>/dev/null) || continue
            sum=$(echo "$dsc" | sed -nE "s/^ ([0-9a-f]{64}) [0-9]+ (postgresql-${v}_$v\.$minor\.orig\.tar\.[a-z0-9]+)$/\1 \2/p" | head -n1)
            [ -n "$sum" ] || continue
            log "PostgreSQL $v: $index is not on the mirror; using $v.$minor-$rev (checked against its .dsc)"
            as_root curl -fsS -m 600 -o "$work/${sum#* }" "$base/${sum#* }"
            (cd "$work" && echo "${sum% *}  ${sum#* }" | sha256sum --check --quiet --strict) \
                || fail "PostgreSQL $v: checksum mismatch for ${sum#* }" "the download was damaged or the mirror is inconsistent: rerun later"
            orig="$work/${sum#* }"
            break
        done
    fi
    [ -n "$orig" ] || fail "PostgreSQL $v: the source package could not be downloaded" \
        "check that deb.debian.org is reachable ('apt-get source --download-only postgresql-$v' with the sources list in $work); or build PostgreSQL $v into $prefix yourself"
    as_root tar -xf "$orig" -C "$work"
    log "PostgreSQL $v: building $(basename "$orig" | sed -E 's/_(.*)\.orig.*/ \1/') into $prefix (about 3 minutes)"
    as_root bash -c "cd '$work'/postgresql-$v.*/ && ./configure --prefix='$prefix' >'$work/configure.log' 2>&1 \
        && make -s -j$(nproc) >'$work/make.log' 2>&1 && make -s install >>'$work/make.log' 2>&1 \
        && make -s -C src/test/isolation install >>'$work/make.log' 2>&1" \
        || { tail -n 30 "$work"/*.log >&2; fail "PostgreSQL $v: build failed" "the logs are in $work (configure.log, make.log)"; }
    as_root rm -rf "$work"
}

# Points PG_MAJOR, PG_CONFIG, PGBIN and PGXS_DIR at PostgreSQL $1 (15: the system's; 17, 18:
# built by ensure_pg).
use_pg() {
    PG_MAJOR=$1
    if [ "$1" = 15 ]; then
        PG_CONFIG=$PG15_CONFIG
    else
        ensure_pg "$1"
        PG_CONFIG="$PG_CACHE/pg$1/bin/pg_config"
        pgrx_init "$1" "$PG_CONFIG"
    fi
    PGBIN=$("$PG_CONFIG" --bindir)
    PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs)")/..
}

# Builds and installs the extension into the PostgreSQL of PG_CONFIG (the system's 15
# unless use_pg chose another): a release build, or a debug build (quicker to build, slower
# to run) with RFM_BUILD=debug.
install_extension() {
    local profile=(--release)
    [ "${RFM_BUILD:-release}" = debug ] && profile=()
    log "building and installing pg_rfm (${RFM_BUILD:-release}) for PostgreSQL $PG_MAJOR"
    step_hint "the build or 'cargo pgrx install' failed (its messages are above): 'cargo pgrx install --release $(pgrx_features) --pg-config $PG_CONFIG' by hand reproduces it"
    (cd "$ROOT" && as_root env "PATH=$PATH" "HOME=$HOME" cargo pgrx install "${profile[@]}" $(pgrx_features) --pg-config "$PG_CONFIG" \
        > >(grep -vE '^\s+(Compiling|Checking)' >&2 || true) 2>&1)
    add_version_scripts "$("$PG_CONFIG" --sharedir)/extension"
}

# The Cargo feature arguments for PG_MAJOR (pg15 is the default feature).
pgrx_features() {
    [ "$PG_MAJOR" = 15 ] || echo "--no-default-features --features pg$PG_MAJOR"
}

# Completes an extension directory pgrx wrote (the current version's install script and
# the upgrade scripts sql/pg_rfm--A--B.sql) with earlier versions' install scripts. A
# released version's install script is frozen in sql/: the code must still generate it.
add_version_scripts() {
    check_frozen_install_script "$1" || fail "a released install script would change" "give the change a new version (Cargo.toml) and an upgrade script"
    as_root cp "$ROOT"/sql/pg_rfm--*.sql "$1/"
}

# When the version being built is released, the install script pgrx generated into $1 must
# be its frozen copy in sql/.
check_frozen_install_script() {
    local current
    current=$(extension_version)
    if [ -f "$ROOT/sql/pg_rfm--$current.sql" ] && ! cmp -s "$ROOT/sql/pg_rfm--$current.sql" "$1/pg_rfm--$current.sql"; then
        diff "$ROOT/sql/pg_rfm--$current.sql" "$1/pg_rfm--$current.sql" | head -n 20 >&2
        echo "The install script the code generates for $current differs from the released sql/pg_rfm--$current.sql:" \
             "released scripts never change; give the change a new version (Cargo.toml) and an upgrade script." >&2
        return 1
    fi
}

# The extension version being built (Cargo.toml's package version).
extension_version() {
    sed -nE '0,/^version = "([^"]+)"/s//\1/p' "$ROOT/Cargo.toml"
}

# Released install and upgrade scripts never change: sql/released.sha256 lists them with
# their checksums. Fails when one changed or is missing, or when a script of a released
# version (an install script, or an upgrade script into it) is not in the list.
check_released_scripts() {
    local sql=${1:-$ROOT/sql} f v released
    local list="$sql/released.sha256"
    (cd "$sql" && sha256sum --check --quiet --strict released.sha256) || {
        echo "sql/released.sha256: a released script changed or is missing (released scripts are never edited;" \
             "put the change into a new version with an upgrade script)" >&2
        return 1
    }
    # Released versions: those the listed scripts install or upgrade to.
    released=$(sed -nE 's/^[0-9a-f]{64}  pg_rfm--(.*--)?([0-9.]+)\.sql$/\2/p' "$list" | sort -u)
    for f in "$sql"/pg_rfm--*.sql; do
        f=$(basename "$f")
        v=$(echo "$f" | sed -E 's/^pg_rfm--(.*--)?([0-9.]+)\.sql$/\2/')
        if echo "$released" | grep -qx "$v" && ! grep -q "  $f\$" "$list"; then
            echo "sql/released.sha256: $f belongs to released version $v but is not listed" >&2
            return 1
        fi
    done
}

# The guard itself: on a copy of sql/, an edited released script and an unlisted one must
# both be caught.
check_released_scripts_catches() {
    local copy first last
    copy=$(mktemp -d)
    cp "$ROOT"/sql/pg_rfm--*.sql "$ROOT/sql/released.sha256" "$copy/"
    check_released_scripts "$copy" || { rm -rf "$copy"; return 1; }
    first=$(head -n1 "$copy/released.sha256" | cut -d' ' -f3)
    echo "-- edited" >>"$copy/$first"
    if check_released_scripts "$copy" >/dev/null 2>&1; then
        echo "check_released_scripts did not catch an edit of $first" >&2; rm -rf "$copy"; return 1
    fi
    cp "$ROOT/sql/$first" "$copy/$first"
    last=$(tail -n1 "$copy/released.sha256" | cut -d' ' -f3)
    sed -i '$d' "$copy/released.sha256"
    if check_released_scripts "$copy" >/dev/null 2>&1; then
        echo "check_released_scripts did not catch the unlisted $last" >&2; rm -rf "$copy"; return 1
    fi
    rm -rf "$copy"
}

build_generator() {
    step_hint "building the data generator (tools/rfm-gen) failed: 'cargo build --release -p rfm-gen' by hand shows why"
    (cd "$ROOT" && cargo build --release -q -p rfm-gen)
    RFM_GEN="$ROOT/target/release/rfm-gen"
}

# A Python virtualenv in target/pyenv with the given PyPI packages (installed once).
ensure_pyenv() {
    PYENV="$ROOT/target/pyenv"
    if [ ! -x "$PYENV/bin/python" ]; then
        # Debian's python3 has venv in a package of its own.
        python3 -c 'import ensurepip, venv' 2>/dev/null || ensure_debs " for Python virtualenvs" python3-venv
        step_hint "could not create the virtualenv $PYENV: 'python3 -m venv $PYENV' by hand shows why"
        rm -rf "$PYENV"
        python3 -m venv "$PYENV"
    fi
    local missing=()
    for p in "$@"; do
        "$PYENV/bin/pip" show -q "${p%%[*}" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing into $PYENV: ${missing[*]}"
        step_hint "pip could not install ${missing[*]}: check access to PyPI; '$PYENV/bin/pip install ${missing[*]}' by hand shows why"
        "$PYENV/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_cluster [--defaults]: a throwaway cluster in a new temp dir, with the settings of
# pgrx-config/postgresql.conf or with PostgreSQL's defaults. Sets CLUSTER_DIR, PGHOST,
# PGPORT, PGUSER.
start_cluster() {
    CLUSTER_DIR=$(mktemp -d /tmp/pg_rfm.XXXXXX)
    step_hint "could not start a PostgreSQL $PG_MAJOR cluster in $CLUSTER_DIR: its log is $CLUSTER_DIR/server.log (if it got that far)"
    chmod 755 "$CLUSTER_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$CLUSTER_DIR"
    as_pg "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
    if [ "${1:-}" = --defaults ]; then
        # PostgreSQL's own settings (benchmarks): only messages and the log line differ.
        grep -E '^(lc_messages|log_line_prefix|log_min_messages) ' "$ROOT/pgrx-config/postgresql.conf" \
            >>"$CLUSTER_DIR/data/postgresql.conf"
    elif [ -f "$("$PG_CONFIG" --pkglibdir)/pg_cron.so" ]; then
        cat "$ROOT/pgrx-config/postgresql.conf" >>"$CLUSTER_DIR/data/postgresql.conf"
    else
        # pg_cron comes from Debian's package for 15 only; the other versions run without it.
        grep -vE '^(shared_preload_libraries|cron\.)' "$ROOT/pgrx-config/postgresql.conf" >>"$CLUSTER_DIR/data/postgresql.conf"
    fi
    PGPORT=$(free_port)
    # RUST_BACKTRACE in the server's environment would add Rust backtraces to the DETAIL of
    # errors raised through pgrx (cancellation, for one); production servers do not set it.
    as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -s \
        -o "-p $PGPORT -k $CLUSTER_DIR -c listen_addresses=127.0.0.1" start
    export PGHOST=$CLUSTER_DIR PGPORT PGUSER=postgres
    log "PostgreSQL $PG_MAJOR running: $CLUSTER_DIR (port $PGPORT)"
}

stop_cluster() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w -s stop || true
        rm -rf "$CLUSTER_DIR"
        CLUSTER_DIR=
    fi
}

psql_q() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# ---------------------------------------------------------------------------- Citus
# Citus is a test dependency: built once from the vendored source (../shared/vendor) into
# the system PostgreSQL when it is not installed. Sets CITUS_SKIP to a reason when neither
# an installed Citus nor the source is there.
CITUS_VERSION=13.2.2
ensure_citus() {
    CITUS_SKIP=
    if [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
        return 0
    fi
    local vendor="$ROOT/../shared/vendor"
    local tarball="$vendor/citus-$CITUS_VERSION.tar.xz"
    if [ ! -f "$tarball" ]; then
        CITUS_SKIP="Citus is not installed and its source ($tarball) is not here"
        return 0
    fi
    ensure_debs " for building Citus" libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev \
        libxslt1-dev libpam0g-dev libreadline-dev zlib1g-dev autoconf flex bison make gcc
    local build="$ROOT/target/citus"
    log "building Citus $CITUS_VERSION from the vendored source (about 2 minutes, once)"
    step_hint "the Citus build failed: its logs are in $build"
    rm -rf "$build" && mkdir -p "$build"
    tar -xJf "$tarball" -C "$build"
    (cd "$build/citus-$CITUS_VERSION" && patch -s -p1 <"$vendor/citus-$CITUS_VERSION-pg15.20-headers.patch" \
        && ./configure -q PG_CONFIG="$PG_CONFIG" >"$build/configure.log" 2>&1 \
        && make -s -j2 >"$build/make.log" 2>&1 \
        && as_root make -s install >"$build/install.log" 2>&1) \
        || { tail -20 "$build"/*.log >&2; fail "Citus build failed" "its logs are in $build"; }
}

# Starts a Citus cluster of its own: a coordinator and two workers on 127.0.0.1, database
# rfm_citus with citus and pg_rfm. Sets CITUS_DIR, CITUS_PORTS (coordinator first).
start_citus() {
    CITUS_DIR=$(mktemp -d /tmp/pg_rfm_citus.XXXXXX)
    chmod 755 "$CITUS_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$CITUS_DIR"
    CITUS_PORTS=()
    local name port
    for name in coordinator worker1 worker2; do
        port=$(free_port)
        CITUS_PORTS+=("$port")
        as_pg "$PGBIN/initdb" -D "$CITUS_DIR/$name" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
        cat >>"$CITUS_DIR/$name/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CITUS_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_worker_processes = 32
log_min_messages = warning
citus.shard_count = 32
CONF
        as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PGBIN/pg_ctl" -D "$CITUS_DIR/$name" \
            -l "$CITUS_DIR/$name.log" -w -s start
    done
    for port in "${CITUS_PORTS[@]:1}" "${CITUS_PORTS[0]}"; do
        "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres rfm_citus
        psql_q -h 127.0.0.1 -p "$port" -U postgres -d rfm_citus -c "SET client_min_messages = warning; CREATE EXTENSION citus"
    done
    psql_q -h 127.0.0.1 -p "${CITUS_PORTS[0]}" -U postgres -d rfm_citus <<SQL
SET client_min_messages = warning;
SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[1]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[2]});
CREATE EXTENSION pg_rfm;
SQL
    log "Citus cluster running: $CITUS_DIR (coordinator port ${CITUS_PORTS[0]}, workers ${CITUS_PORTS[*]:1})"
}

stop_citus() {
    if [ -n "${CITUS_DIR:-}" ] && [ -d "$CITUS_DIR" ]; then
        local name
        for name in worker2 worker1 coordinator; do
            [ -d "$CITUS_DIR/$name" ] && as_pg "$PGBIN/pg_ctl" -D "$CITUS_DIR/$name" -m fast -w -s stop || true
        done
        rm -rf "$CITUS_DIR"
        CITUS_DIR=
    fi
}
