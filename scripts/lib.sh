# Shared shell functions for scripts/demo.sh, scripts/test.sh and bench/. Source, don't run.
# Idempotent: every step checks before it installs or builds.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-$(head -n1 "$ROOT/pgrx-config/pg_config")}
PGBIN=$("$PG_CONFIG" --bindir 2>/dev/null || dirname "$PG_CONFIG")
PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs 2>/dev/null || echo /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk)")/..
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

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
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_deps() {
    ensure_debs "" postgresql-15 postgresql-server-dev-15 libclang-dev sudo postgresql-15-cron chromium
    if ! cargo pgrx --version 2>/dev/null | grep -q '0\.18\.1'; then
        log "installing cargo-pgrx 0.18.1 (about 6 minutes, once)"
        cargo install cargo-pgrx --version 0.18.1 --locked
    fi
    if ! grep -qs "^pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        log "pointing pgrx at $PG_CONFIG"
        cargo pgrx init --pg15="$PG_CONFIG" >/dev/null
    fi
}

# Builds and installs the extension into the system PostgreSQL: a release build, or a
# debug build (quicker to build, slower to run) with RFM_BUILD=debug.
install_extension() {
    local profile=(--release)
    [ "${RFM_BUILD:-release}" = debug ] && profile=()
    log "building and installing pg_rfm (${RFM_BUILD:-release})"
    (cd "$ROOT" && as_root env "PATH=$PATH" "HOME=$HOME" cargo pgrx install "${profile[@]}" --pg-config "$PG_CONFIG" 2>&1 \
        | grep -vE '^\s+(Compiling|Checking)' >&2)
    # Earlier versions' install scripts and the upgrade scripts (pgrx writes only the current one).
    as_root cp "$ROOT"/sql/versions/*.sql "$("$PG_CONFIG" --sharedir)/extension/"
}

build_generator() {
    (cd "$ROOT" && cargo build --release -q -p rfm-gen)
    RFM_GEN="$ROOT/target/release/rfm-gen"
}

# A Python virtualenv in target/pyenv with the given PyPI packages (installed once).
ensure_pyenv() {
    PYENV="$ROOT/target/pyenv"
    [ -x "$PYENV/bin/python" ] || python3 -m venv "$PYENV"
    local missing=()
    for p in "$@"; do
        "$PYENV/bin/pip" show -q "${p%%[*}" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing into $PYENV: ${missing[*]}"
        "$PYENV/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a throwaway cluster in a new temp dir. Sets CLUSTER_DIR, PGHOST, PGPORT, PGUSER.
start_cluster() {
    CLUSTER_DIR=$(mktemp -d /tmp/pg_rfm.XXXXXX)
    chmod 755 "$CLUSTER_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$CLUSTER_DIR"
    as_pg "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
    cat "$ROOT/pgrx-config/postgresql.conf" >>"$CLUSTER_DIR/data/postgresql.conf"
    PGPORT=$(free_port)
    # RUST_BACKTRACE in the server's environment would add Rust backtraces to the DETAIL of
    # errors raised through pgrx (cancellation, for one); production servers do not set it.
    as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -s \
        -o "-p $PGPORT -k $CLUSTER_DIR -c listen_addresses=127.0.0.1" start
    export PGHOST=$CLUSTER_DIR PGPORT PGUSER=postgres
    log "PostgreSQL 15 running: $CLUSTER_DIR (port $PGPORT)"
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
    rm -rf "$build" && mkdir -p "$build"
    tar -xJf "$tarball" -C "$build"
    (cd "$build/citus-$CITUS_VERSION" && patch -s -p1 <"$vendor/citus-$CITUS_VERSION-pg15.20-headers.patch" \
        && ./configure -q PG_CONFIG="$PG_CONFIG" >"$build/configure.log" 2>&1 \
        && make -s -j2 >"$build/make.log" 2>&1 \
        && as_root make -s install >"$build/install.log" 2>&1) \
        || { echo "Citus build failed; logs in $build" >&2; tail -20 "$build"/*.log >&2; return 1; }
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
