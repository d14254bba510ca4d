"""The two demo workflows that scripts/demo.sh runs (demo/workflow.sql on generated invoice
lines, demo/attributes_data.sql + demo/attributes_workflow.sql on generated customer
attributes), run by psql as the demo runs them, in a database of their own; then what they
leave behind is checked against plain SQL."""

import os
import subprocess

import psycopg
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DB = "e2e_demo"


def psql(*files):
    cmd = [os.path.join(os.environ["PGBIN"], "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB]
    for f in files:
        cmd += ["-f", os.path.join(ROOT, "demo", f)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"psql {' '.join(files)} failed:\n{run.stderr[-3000:]}"
    return run.stdout


@pytest.fixture(scope="module")
def demo_db(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(f"dbname={DB}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_rfm")
        yield conn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def test_retail_workflow(demo_db):
    conn = demo_db
    data = subprocess.run([os.environ["RFM_GEN"], "--lines", "60000", "--customers", "800", "--seed", "5", "--associations"],
                          check=True, capture_output=True).stdout
    conn.execute("CREATE TABLE retail_lines (invoice text, stock_code text, quantity int,"
                 " invoice_date timestamptz, price float8, customer_id int, country text)")
    with conn.cursor().copy("COPY retail_lines FROM STDIN") as copy:
        copy.write(data)
    out = psql("workflow.sql")
    for step in range(1, 12):
        assert f"== {step}." in out
    # RFM per customer against plain SQL on the same cleaning rules.
    diff = conn.execute("""
        WITH plain AS (
            SELECT customer_id, count(DISTINCT invoice) AS frequency, sum(amount) AS monetary,
                   extract(epoch FROM '2011-12-10 00:00+00' - max(invoice_date)) / 86400 AS recency
            FROM (SELECT DISTINCT invoice, stock_code, quantity, invoice_date, price, customer_id, country,
                         quantity * price AS amount
                  FROM retail_lines
                  WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0) c
            GROUP BY customer_id)
        SELECT count(*) FILTER (WHERE r.customer_id IS NULL OR p.customer_id IS NULL),
               count(*) FILTER (WHERE r.frequency <> p.frequency
                                   OR abs(r.monetary - p.monetary) > 1e-6 * abs(p.monetary)
                                   OR abs(r.recency - p.recency) > 1e-9),
               count(*)
        FROM customer_rfm r FULL JOIN plain p USING (customer_id)""").fetchone()
    assert diff[0] == 0 and diff[1] == 0 and diff[2] > 700
    # The trained model labels every customer, with one of its own labels.
    unlabelled = conn.execute("""
        SELECT count(*) FROM customer_rfm
        WHERE rfm_segment('demo', recency, frequency, monetary) IS DISTINCT FROM
              (SELECT label FROM rfm_centroids c JOIN rfm_models m USING (model, version)
               WHERE m.model = 'demo' AND m.active
                 AND c.cluster = rfm_cluster('demo', recency, frequency, monetary))""").fetchone()[0]
    assert unlabelled == 0


def test_campaigns_workflow(demo_db):
    """demo/campaigns.sql after the retail workflow: two experiments, a campaign job, a
    simulated response with a known lift, and the results, checked against plain SQL."""
    conn = demo_db
    out = psql("campaigns.sql")
    for step in range(1, 8):
        assert f"== {step}." in out
    # The campaign job's customers are the stored offer arm.
    sent = conn.execute("SELECT count(*) FROM winback_customers WHERE rfm_experiment_arm('winback', customer_id) = 'offer'").fetchone()[0]
    stored = conn.execute("SELECT count(*) FROM rfm_experiment_assignments WHERE experiment = 'winback' AND arm = 'offer'").fetchone()[0]
    assert sent == stored > 30
    # Each stratum (segment) is split in half to one customer.
    unbalanced = conn.execute("""
        SELECT count(*) FROM (SELECT stratum, count(*) FILTER (WHERE arm = 'offer') - count(*) FILTER (WHERE arm = 'control') AS d
                              FROM rfm_experiment_assignments WHERE experiment = 'winback' GROUP BY stratum) x
        WHERE abs(d) > 1""").fetchone()[0]
    assert unbalanced == 0
    # Overall results against plain SQL over the simulated orders.
    res = {r[0]: r[1:] for r in conn.execute("""
        SELECT arm, customers, converted, conversion_rate FROM rfm_experiment_results(
            'winback', 'campaign_orders', 'customer_id', 'ts', 'amount', '2011-12-10', '2012-01-10') WHERE overall""")}
    plain = {r[0]: r[1:] for r in conn.execute("""
        SELECT a.arm, count(*), count(o.customer_id), count(o.customer_id)::float8 / count(*)
        FROM rfm_experiment_assignments a LEFT JOIN (SELECT DISTINCT customer_id FROM campaign_orders) o USING (customer_id)
        WHERE a.experiment = 'winback' GROUP BY a.arm""")}
    assert res == plain, (res, plain)
    # The planted truth: Champions' up-sold customers spend 20% more per order; CUPED with
    # past monetary narrows the revenue interval a lot (spend follows past monetary).
    champ = conn.execute("""
        SELECT r.revenue_ci_high - r.revenue_ci_low, r.cuped_ci_high - r.cuped_ci_low, r.variance_reduction,
               r.cuped_ci_low, r.cuped_ci_high, c.revenue_per_customer, r.revenue_ci_low, r.revenue_ci_high
        FROM rfm_experiment_results('champions_upsell', 'campaign_orders', 'customer_id', 'ts', 'amount',
                                    '2011-12-10', '2012-01-10', covariate_column => 'monetary') r,
             rfm_experiment_results('champions_upsell', 'campaign_orders', 'customer_id', 'ts', 'amount',
                                    '2011-12-10', '2012-01-10') c
        WHERE r.overall AND r.arm = 'upsell' AND c.overall AND c.arm = 'control'""").fetchone()
    assert champ[1] < champ[0] / 5 and champ[2] > 0.9, champ
    # The planted truth, 20% of control's revenue per customer, is inside the CUPED interval.
    assert champ[3] < 0.2 * champ[5] < champ[4], champ
    # As the README shows: without CUPED the interval spans zero, with it it does not.
    assert champ[6] < 0 < champ[7] and champ[3] > 0, champ


def test_cross_sell_workflow(demo_db):
    """demo/cross_sell.sql after the retail workflow: the planted bundles are found as rules,
    and the recommendations of every customer equal the rules applied in plain SQL."""
    conn = demo_db
    out = psql("cross_sell.sql")
    for step in range(1, 8):
        assert f"== {step}." in out
    # The planted bundles (rfm-gen's BUNDLES: products ranked 3 and 41, 7 with 58 and 90, 12
    # and 133, 20 and 77, 5 with 211 and 212, as stock codes) are the rules found.
    planted = {("10023", "10289"), ("10051", "10408"), ("10051", "10632A"), ("10086", "10933"), ("10142", "10541"),
               ("10037", "11479"), ("10037", "11486")}
    found = conn.execute("SELECT antecedent, consequent, lift FROM rfm_basket_rules('retail', NULL)"
                         " WHERE cardinality(antecedent) = 1 AND cardinality(consequent) = 1").fetchall()
    pairs = {(a[0], c[0]) for a, c, _ in found} | {(c[0], a[0]) for a, c, _ in found}
    assert len(found) > 0 and all(p in planted or (p[1], p[0]) in planted for p in pairs), found
    assert min(l for _, _, l in found) > 5
    # Recommendations in plain SQL: per customer and candidate item, the best (confidence,
    # lift) of the segment's rules whose antecedent the basket holds; top 3 by those, then item.
    differ = conn.execute("""
        WITH b AS (SELECT customer_id, segment, array_agg(DISTINCT stock_code) AS items FROM segment_lines GROUP BY 1, 2),
             best AS (SELECT b.customer_id, x.item, r.confidence, r.lift,
                             row_number() OVER (PARTITION BY b.customer_id, x.item ORDER BY r.confidence DESC, r.lift DESC) AS k
                      FROM b JOIN rfm_basket_rules('retail') r ON r.segment = b.segment AND r.antecedent <@ b.items
                      CROSS JOIN LATERAL unnest(r.consequent) x(item)
                      WHERE NOT x.item = ANY (b.items)),
             want AS (SELECT customer_id, (array_agg(item ORDER BY confidence DESC, lift DESC, item))[1:3] AS items
                      FROM best WHERE k = 1 GROUP BY 1)
        SELECT count(*) FILTER (WHERE coalesce(w.items, '{}') IS DISTINCT FROM rfm_recommend('retail', b.items, 3, b.segment)),
               count(w.items)
        FROM b LEFT JOIN want w USING (customer_id)""").fetchone()
    assert differ[0] == 0 and differ[1] > 20, differ


def test_attributes_workflow(demo_db):
    conn = demo_db
    out = psql("attributes_data.sql", "attributes_workflow.sql")
    for step in range(1, 14):
        assert f"== {step}." in out
    # Rerunnable: the second run starts from scratch and gives the same clusters.
    first = conn.execute("SELECT array_agg(cluster ORDER BY customer_id) FROM customer_personas").fetchone()[0]
    psql("attributes_data.sql", "attributes_workflow.sql")
    assert conn.execute("SELECT array_agg(cluster ORDER BY customer_id) FROM customer_personas").fetchone()[0] == first

    n, n_income = conn.execute("SELECT count(*), count(income) FROM marketing_customers").fetchone()
    assert n == 2240 and 2000 < n_income < n
    # The stored vocabulary: 13 numeric columns, then one column per education level (at most
    # 6) and marital status (the 5 most frequent + '(other)'), counted here in plain SQL.
    educations, maritals = conn.execute(
        "SELECT count(DISTINCT education), count(DISTINCT marital_status) FROM marketing_customers").fetchone()
    encoded, components = conn.execute(
        "SELECT cardinality(encoded_features), cardinality(pca_variance_ratio)"
        " FROM rfm_models WHERE model = 'personas' AND active").fetchone()
    assert maritals > 6
    assert encoded == 13 + min(educations, 6) + 6
    assert components == 2
    # Every customer with all features gets a segment, the 27-odd without income none.
    rows = conn.execute("""
        SELECT count(*), count(*) FILTER (WHERE (segment IS NULL) <> (income IS NULL))
        FROM customer_personas""").fetchone()
    assert rows == (n, 0)
    # The names given by hand in step 10 (after reading the profile) match the clusters:
    # measured here on the published view with plain aggregates.
    means = {r[0]: r[1:] for r in conn.execute("""
        SELECT segment, avg(income), avg(age), avg(kidhome), avg(teenhome), avg(wine)
        FROM customer_personas WHERE segment IS NOT NULL GROUP BY segment""")}
    assert set(means) == {"Young families", "Affluent connoisseurs", "Established parents", "Young singles"}
    top = {name: max(means, key=lambda s: means[s][i]) for i, name in enumerate(["income", "age", "kidhome", "teenhome", "wine"])}
    assert top["income"] == "Affluent connoisseurs" and top["wine"] == "Affluent connoisseurs"
    assert top["kidhome"] == "Young families"
    assert top["teenhome"] == "Established parents"
    assert min(means, key=lambda s: means[s][1]) == "Young singles"
