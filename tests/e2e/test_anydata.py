"""Models on customer attributes (numeric and categorical columns, PCA) against scikit-learn:
one-hot vocabulary, explained-variance ratios and loadings of the PCA on the same
standardized data, the number of components for a variance share, KMeans inertia after PCA
against PCA + KMeans(n_init=10), and rfm_explain against a NumPy brute force."""

import numpy as np
import psycopg
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

NUMERIC = ["income", "age", "children", "mnt_wines", "mnt_meat", "num_web_visits", "num_store_purchases"]
CATEGORICAL = ["education", "marital_status"]
FEATURES = NUMERIC + CATEGORICAL


def customers(n=2240, seed=7):
    """Three latent kinds of customers with noise, like the marketing campaign data."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=n, p=[0.3, 0.45, 0.25])
    income = np.where(kind == 0, 75000, np.where(kind == 1, 35000, 52000)) + rng.normal(0, 9000, n)
    age = np.where(kind == 0, 58, np.where(kind == 1, 44, 30)) + rng.normal(0, 7, n)
    children = np.where(kind == 1, rng.integers(1, 4, n), rng.integers(0, 2, n))
    wines = np.exp(np.where(kind == 0, 6.3, 4.0) + rng.normal(0, 0.6, n))
    meat = np.exp(np.where(kind == 0, 5.8, 3.6) + rng.normal(0, 0.7, n))
    visits = np.where(kind == 1, 7, 3) + rng.poisson(2, n)
    store = np.where(kind == 0, 9, 4) + rng.poisson(2, n)
    educ = np.array(["Basic", "2n Cycle", "Graduation", "Master", "PhD"])
    education = np.where(kind == 0, rng.choice(educ[2:], n, p=[0.3, 0.3, 0.4]), rng.choice(educ, n, p=[0.1, 0.15, 0.5, 0.15, 0.1]))
    marital = rng.choice(["Married", "Together", "Single", "Divorced", "Widow", "YOLO"], n, p=[0.39, 0.26, 0.21, 0.1, 0.035, 0.005])
    rows = []
    for i in range(n):
        rows.append((i + 1, round(float(income[i]), 2), round(float(age[i]), 1), int(children[i]), round(float(wines[i]), 2),
                     round(float(meat[i]), 2), int(visits[i]), int(store[i]), str(education[i]), str(marital[i])))
    return rows


@pytest.fixture(scope="module")
def attributes(dsn):
    rows = customers()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
        conn.execute("DROP TABLE IF EXISTS e2e_attributes CASCADE")
        conn.execute("CREATE TABLE e2e_attributes (customer_id int PRIMARY KEY, income numeric, age float8, children int,"
                     " mnt_wines numeric, mnt_meat numeric, num_web_visits int, num_store_purchases int,"
                     " education text, marital_status text)")
        with conn.cursor().copy("COPY e2e_attributes FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
    return rows


def encoded(rows, levels):
    """The rows one-hot encoded by hand with the given vocabulary (feature -> levels)."""
    out = []
    for r in rows:
        x = [float(v) for v in r[1:1 + len(NUMERIC)]]
        for j, f in enumerate(CATEGORICAL):
            value = r[1 + len(NUMERIC) + j]
            x.extend(1.0 if value == level else 0.0 for level in levels[f])
        out.append(x)
    return np.array(out)


def train(conn, name, **options):
    opts = ", ".join(f"{k} => {v}" for k, v in options.items())
    conn.execute("SELECT rfm_drop_model(%s)", (name,))
    conn.execute(f"SELECT rfm_train(%s, 'e2e_attributes', features => %s, outliers => 'keep', {opts})", (name, FEATURES))
    return conn.execute("SELECT encoded_features, pca_variance_ratio, pca_components, pca_center, scale_mean, scale_sd, inertia"
                        " FROM rfm_models WHERE model = %s AND active", (name,)).fetchone()


def test_vocabulary_is_every_level_sorted(dsn, attributes):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        train(conn, "attr_pca", k=4, pca=2)
        got = conn.execute("SELECT feature, array_agg(level ORDER BY position) FROM rfm_model_levels"
                           " WHERE model = 'attr_pca' GROUP BY feature ORDER BY feature").fetchall()
    want = [(f, sorted({r[1 + len(NUMERIC) + j] for r in attributes})) for j, f in enumerate(CATEGORICAL)]
    assert got == sorted(want)


def test_pca_and_kmeans_match_scikit_learn(dsn, attributes):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        names, ratio, components, center, mean, sd, inertia = train(conn, "attr_pca", k=4, pca=2)
        levels = {f: [n.split("=", 1)[1] for n in names if n.startswith(f + "=")] for f in CATEGORICAL}
        x = StandardScaler().fit_transform(encoded(attributes, levels))
        pca = PCA(n_components=2, svd_solver="full").fit(x)
        # Explained-variance ratios to 1e-6, loadings up to sign.
        assert np.allclose(ratio, pca.explained_variance_ratio_, rtol=0, atol=1e-6), (ratio, pca.explained_variance_ratio_)
        for ours, theirs in zip(np.array(components), pca.components_):
            assert min(np.abs(ours - theirs).max(), np.abs(ours + theirs).max()) < 1e-6
        # KMeans after PCA: inertia within 1% of scikit-learn's best of 10.
        km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(pca.transform(x))
        assert inertia <= km.inertia_ * 1.01, (inertia, km.inertia_)
        # A variance share: as many components as scikit-learn's PCA(0.9) keeps.
        _, ratio90, *_ = train(conn, "attr_pca90", k=4, pca_variance=0.9)
        assert len(ratio90) == PCA(n_components=0.9, svd_solver="full").fit(x).n_components_


def test_explain_equals_brute_force(dsn, attributes):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        names, ratio, components, center, mean, sd, inertia = train(conn, "attr_pca", k=4, pca=2)
        cents = conn.execute("SELECT cluster, scaled FROM rfm_centroids c JOIN rfm_models m USING (model, version)"
                             " WHERE m.model = 'attr_pca' AND m.active ORDER BY cluster").fetchall()
        got = conn.execute("SELECT e.cluster, e.runner_up, e.distance, e.runner_up_distance, e.margin, e.shares"
                           " FROM e2e_attributes a, LATERAL rfm_explain('attr_pca', to_jsonb(a)) e"
                           " ORDER BY a.customer_id").fetchall()
    levels = {f: [n.split("=", 1)[1] for n in names if n.startswith(f + "=")] for f in CATEGORICAL}
    z = (encoded(attributes, levels) - np.array(mean)) / np.array(sd)
    p = (z - np.array(center)) @ np.array(components).T
    c = np.array([s for _, s in cents])
    d = np.sqrt(((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
    order = np.argsort(d, axis=1, kind="stable")
    for i, (cl, ru, dist, rdist, margin, shares) in enumerate(got):
        assert cl == cents[order[i, 0]][0] and ru == cents[order[i, 1]][0]
        assert abs(dist - d[i, order[i, 0]]) < 1e-9 and abs(rdist - d[i, order[i, 1]]) < 1e-9
        assert abs(margin - (rdist - dist)) < 1e-12
        diff2 = (p[i] - c[order[i, 0]]) ** 2
        assert np.allclose(shares, diff2 / diff2.sum(), atol=1e-9)
