"""A BI tool reads the published segments like any table, through a client library."""

import psycopg
from psycopg.rows import dict_row


def test_published_views_match_direct_sql(dsn, shop):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT rfm_publish('shop', %s, 'bi_segments')", (shop,))
        # What a BI tool does: plain SELECTs on the view and the materialized view.
        with conn.cursor(row_factory=dict_row) as cur:
            view = {r["customer_id"]: r for r in cur.execute("SELECT * FROM bi_segments").fetchall()}
            mv = {r["customer_id"]: r for r in cur.execute("SELECT * FROM bi_segments_mv").fetchall()}
            direct = {
                r["customer_id"]: r
                for r in cur.execute(
                    "SELECT c.customer_id, rfm_segment('shop', recency, frequency, monetary) AS segment,"
                    " rfm_cluster('shop', recency, frequency, monetary) AS cluster, s.code,"
                    " (SELECT version FROM rfm_models WHERE model = 'shop' AND active) AS version"
                    " FROM e2e_rfm c, (SELECT rfm_breaks(recency, frequency, monetary) b FROM e2e_rfm) k,"
                    " LATERAL rfm_score(c.recency, c.frequency, c.monetary, k.b) s"
                ).fetchall()
            }
        assert len(view) == len(direct) == len(mv) == 1500
        expected_columns = ["customer_id", "recency", "frequency", "monetary", "r", "f", "m", "code",
                            "cluster", "segment", "action", "model_version"]
        assert list(next(iter(view.values())).keys()) == expected_columns
        for cid, d in direct.items():
            v = view[cid]
            assert (v["segment"], v["cluster"], v["code"], v["model_version"]) == \
                (d["segment"], d["cluster"], d["code"], d["version"])
            assert mv[cid] == v
        assert all(v["action"] for v in view.values())
