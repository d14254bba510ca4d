"""Compare pg_rfm's preprocessing, metrics and KMeans with scikit-learn on the same data.

Run by scripts/compare_sklearn.sh (which starts a throwaway cluster and a virtualenv).
Checks, and exits non-zero when one fails:
  - the stored preprocessing (IQR fences, log1p, standardization) equals numpy's;
  - silhouette, Davies-Bouldin and Calinski-Harabasz of pg_rfm's labels equal
    scikit-learn's on the same scaled data and labels, within 1e-6;
  - pg_rfm's KMeans inertia is within 1% of scikit-learn's KMeans (same k, n_init).
Writes the results as a Markdown table to the path given as the first argument.
"""

import os
import subprocess
import sys
import time

import numpy as np
import psycopg
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

LINES, CUSTOMERS, SEED = 300_000, 3_000, 42
FEATURES = ["recency", "frequency", "monetary"]


def load(conn, gen):
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
        cur.execute("DROP TABLE IF EXISTS retail_lines CASCADE")
        cur.execute(
            "CREATE TABLE retail_lines (invoice text, stock_code text, quantity int,"
            " invoice_date timestamptz, price float8, customer_id int, country text)"
        )
        data = subprocess.run(
            [gen, "--lines", str(LINES), "--customers", str(CUSTOMERS), "--seed", str(SEED)],
            check=True, capture_output=True,
        ).stdout
        with cur.copy("COPY retail_lines FROM STDIN") as copy:
            copy.write(data)
        cur.execute(
            "CREATE TABLE customer_rfm AS SELECT customer_id,"
            " (rfm(invoice_date, quantity * price, invoice, '2011-12-10 00:00+00')).*"
            " FROM (SELECT DISTINCT * FROM retail_lines WHERE customer_id IS NOT NULL"
            "       AND invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0) c GROUP BY customer_id"
        )
    conn.commit()


def preprocess(raw):
    """The notebook pipeline in numpy: IQR clip (k = 1.5), log1p(F, M), standardize."""
    q1, q3 = np.percentile(raw, [25, 75], axis=0)  # linear interpolation = percentile_cont
    lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    x = np.clip(raw, lower, upper)
    x[:, 1:] = np.log1p(x[:, 1:])
    mean, sd = x.mean(axis=0), x.std(axis=0)  # population sd, as StandardScaler
    return (x - mean) / sd, lower, upper, mean, sd


def main(out_path):
    gen = os.environ["RFM_GEN"]
    rows, ok = [], True
    with psycopg.connect() as conn:
        load(conn, gen)
        cur = conn.cursor()
        cur.execute("SELECT recency, frequency, monetary FROM customer_rfm ORDER BY customer_id")
        raw = np.array(cur.fetchall(), dtype=float)
        x, lower, upper, mean, sd = preprocess(raw)
        for k in (3, 4, 6):
            t0 = time.perf_counter()
            cur.execute("SELECT inertia, elapsed_ms FROM rfm_train('cmp', 'customer_rfm', k => %s, n_init => 10)", (k,))
            inertia, elapsed_ms = cur.fetchone()
            cur.execute(
                "SELECT lower_fence, upper_fence, scale_mean, scale_sd FROM rfm_models WHERE model = 'cmp' AND active"
            )
            lo, up, mu, sigma = (np.array(v, dtype=float) for v in cur.fetchone())
            pre = max(np.max(np.abs(lo - lower)), np.max(np.abs(up - upper)),
                      np.max(np.abs(mu - mean)), np.max(np.abs(sigma - sd) / sd))
            cur.execute(
                "SELECT rfm_cluster('cmp', recency, frequency, monetary) FROM customer_rfm ORDER BY customer_id"
            )
            labels = np.array([r[0] for r in cur.fetchall()])
            cur.execute("SELECT silhouette, davies_bouldin, calinski_harabasz FROM rfm_evaluate('cmp', 'customer_rfm')")
            sil, db, ch = cur.fetchone()
            sk_sil = silhouette_score(x, labels)
            sk_db = davies_bouldin_score(x, labels)
            sk_ch = calinski_harabasz_score(x, labels)
            t1 = time.perf_counter()
            km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(x)
            sk_ms = (time.perf_counter() - t1) * 1000
            checks = {
                "preprocessing": pre < 1e-9,
                "silhouette": abs(sil - sk_sil) < 1e-6,
                "davies_bouldin": abs(db - sk_db) < 1e-6,
                "calinski_harabasz": abs(ch - sk_ch) < 1e-6 * max(1, sk_ch),
                "inertia": inertia <= km.inertia_ * 1.01,
            }
            ok &= all(checks.values())
            rows.append((k, inertia, km.inertia_, sil, sk_sil, db, sk_db, ch, sk_ch, pre, elapsed_ms, sk_ms, checks))
            print(f"k={k}: inertia {inertia:.4f} vs {km.inertia_:.4f}; silhouette {sil:.9f} vs {sk_sil:.9f};"
                  f" DB {db:.9f} vs {sk_db:.9f}; CH {ch:.6f} vs {sk_ch:.6f}; preprocessing diff {pre:.1e};"
                  f" {'ok' if all(checks.values()) else 'FAILED ' + str(checks)}", flush=True)
        cur.execute("SELECT count(*) FROM customer_rfm")
        n = cur.fetchone()[0]
    with open(out_path, "w") as f:
        f.write(
            "# pg_rfm against scikit-learn\n\n"
            f"Written by `scripts/compare_sklearn.sh` (scikit-learn {sklearn.__version__}, numpy {np.__version__}).\n"
            f"Data: `rfm-gen --lines {LINES} --customers {CUSTOMERS} --seed {SEED}`, cleaned, RFM per customer "
            f"({n} customers); preprocessing IQR clip, log1p of frequency and monetary, standardization.\n\n"
            "Metrics are computed by `rfm_evaluate` and by scikit-learn on the same scaled data and the same labels "
            "(pg_rfm's `rfm_cluster`). Inertia compares `rfm_train` (k-means++, n_init 10, seed 42) with "
            "`KMeans(n_clusters=k, n_init=10, random_state=0)`.\n\n"
            "| k | inertia pg_rfm | inertia sklearn | silhouette pg_rfm | silhouette sklearn | Davies-Bouldin pg_rfm | "
            "Davies-Bouldin sklearn | Calinski-Harabasz pg_rfm | Calinski-Harabasz sklearn | max preprocessing diff | "
            "train ms pg_rfm (k fixed) | fit ms sklearn | all checks |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        for (k, i, ski, s, sks, d, skd, c, skc, pre, ms, skms, checks) in rows:
            f.write(f"| {k} | {i:.4f} | {ski:.4f} | {s:.10f} | {sks:.10f} | {d:.10f} | {skd:.10f} | {c:.6f} | {skc:.6f} "
                    f"| {pre:.1e} | {ms:.0f} | {skms:.0f} | {'pass' if all(checks.values()) else 'FAIL'} |\n")
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
