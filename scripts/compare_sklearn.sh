#!/usr/bin/env bash
# Compares pg_rfm's preprocessing, clustering metrics and KMeans inertia with scikit-learn
# on generated data, and records the result in docs/sklearn-comparison.md.
# Installs scikit-learn, numpy and psycopg from PyPI into target/pyenv (once).
source "$(dirname "$0")/lib.sh"

ensure_deps
install_extension
build_generator
venv="$ROOT/target/pyenv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sklearn, psycopg' 2>/dev/null; then
    log "creating $venv with scikit-learn, numpy, psycopg"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check scikit-learn numpy 'psycopg[binary]'
fi
start_cluster
trap stop_cluster EXIT
export RFM_GEN PGDATABASE=postgres
"$venv/bin/python" "$ROOT/scripts/compare_sklearn.py" "$ROOT/docs/sklearn-comparison.md"
