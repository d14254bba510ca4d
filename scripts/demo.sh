#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (Debian packages, cargo-pgrx, pgrx init,
# release build of pg_rfm), then runs the demo on a throwaway PostgreSQL 15 cluster:
# generated retail data -> cleaning -> RFM -> IQR -> scores -> segments (demo/workflow.sql),
# then customer attributes -> one-hot encoding -> PCA -> k search -> personas -> profile ->
# publish -> explain (demo/attributes_data.sql, demo/attributes_workflow.sql), then campaigns on
# the retail segments -> plan -> assign -> simulated response -> results (demo/campaigns.sql),
# and cross-sell: rules per segment -> recommendations -> segment affinity (demo/cross_sell.sql).
#
#   scripts/demo.sh [--keep] [--only retail|attributes|campaigns|cross-sell] [--lines N] [--customers N] [--seed N]
#                   [--report FILE.html]
#
# --keep leaves the cluster running and prints how to connect to it.
# --report writes rfm_report('demo') to FILE.html and a screenshot to FILE.png (Chromium).
source "$(dirname "$0")/lib.sh"

keep=0 only= lines=500000 customers=4000 seed=42 report=
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1 ;;
        --only) only=$2; shift
                case "$only" in retail|attributes|campaigns|cross-sell) ;; *) echo "--only takes retail, attributes, campaigns or cross-sell" >&2; exit 2 ;; esac ;;
        --lines) lines=$2; shift ;;
        --customers) customers=$2; shift ;;
        --seed) seed=$2; shift ;;
        --report) report=$2; shift ;;
        -h|--help) sed -n "2,12p" "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

ensure_deps
install_extension
build_generator
start_cluster
[ "$keep" = 1 ] || trap stop_cluster EXIT

"$PGBIN/createdb" rfm_demo
psql_q -d rfm_demo -c "CREATE EXTENSION pg_rfm"

if [ "$only" != attributes ]; then
    log "demo 1 (docs/workflow.md): RFM segments from invoice lines"
    psql_q -d rfm_demo <<'SQL'
CREATE TABLE retail_lines (
    invoice      text,          -- 'C' prefix: cancellation
    stock_code   text,
    quantity     int,
    invoice_date timestamptz,
    price        float8,
    customer_id  int,           -- NULL: guest checkout
    country      text
);
SQL
    log "loading $lines generated invoice lines ($customers customers, seed $seed)"
    "$RFM_GEN" --lines "$lines" --customers "$customers" --seed "$seed" --associations \
        | psql_q -d rfm_demo -c "COPY retail_lines FROM STDIN"
    psql_q -d rfm_demo -c "ANALYZE retail_lines"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d rfm_demo -f "$ROOT/demo/workflow.sql"
fi

if [ -z "$only" ] || [ "$only" = campaigns ]; then
    log "demo 2 (docs/campaigns.md): A/B tests of segment actions, planned, assigned and measured"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d rfm_demo -f "$ROOT/demo/campaigns.sql"
fi

if [ -z "$only" ] || [ "$only" = cross-sell ]; then
    log "demo 3 (docs/cross-sell.md): association rules per segment, recommendations, segment affinity"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d rfm_demo -f "$ROOT/demo/cross_sell.sql"
fi

if [ -z "$only" ] || [ "$only" = attributes ]; then
    log "demo 4 (docs/any-data.md): personas from customer attributes (2,240 generated customers)"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d rfm_demo \
        -f "$ROOT/demo/attributes_data.sql" -f "$ROOT/demo/attributes_workflow.sql"
fi

if [ -n "$report" ] && [ "$only" != attributes ]; then
    psql_q -d rfm_demo -At -c "SELECT rfm_report('demo')" >"$report"
    profile=$(mktemp -d)
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
        --screenshot="${report%.html}.png" --window-size=1240,1000 "file://$(realpath "$report")" 2>/dev/null
    rm -rf "$profile"
    log "report: $report and ${report%.html}.png"
fi

if [ "$keep" = 1 ]; then
    cat <<MSG

The demo cluster is still running. Connect with:
    psql -h $PGHOST -p $PGPORT -U postgres rfm_demo
Stop it with:
    $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- ")$PGBIN/pg_ctl -D $CLUSTER_DIR/data stop && rm -rf $CLUSTER_DIR
MSG
fi
