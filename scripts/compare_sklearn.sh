#!/usr/bin/env bash
# Compares pg_rfm's preprocessing, clustering metrics and KMeans inertia with scikit-learn
# on generated data, and records the result in docs/sklearn-comparison.md.
# Installs scikit-learn, numpy and psycopg from PyPI into target/pyenv (once).
source "$(dirname "$0")/lib.sh"

ensure_deps
install_extension
build_generator
ensure_pyenv scikit-learn numpy 'psycopg[binary]'
start_cluster
trap stop_cluster EXIT
export RFM_GEN PGDATABASE=postgres
"$PYENV/bin/python" "$ROOT/scripts/compare_sklearn.py" "$ROOT/docs/sklearn-comparison.md"
