"""The rfm_model type through a real client: its binary form (COPY BINARY, the binary
protocol; rfm_model_send and rfm_model_recv) round-trips, and damaged binary input is an
error (XX001), not a stored value."""

import psycopg
import pytest


def test_binary_copy_round_trip(dsn, shop):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("DROP TABLE IF EXISTS kept_values")
        conn.execute("CREATE TABLE kept_values (m rfm_model)")
        data = b""
        with conn.cursor().copy("COPY (SELECT rfm_model_of('shop')) TO STDOUT (FORMAT binary)") as copy:
            for chunk in copy:
                data += bytes(chunk)
        # PGCOPY header, one tuple of one field: the field holds the value's own encoding.
        assert data.startswith(b"PGCOPY\n\xff\r\n\x00") and b"RFMM\x01" in data
        with conn.cursor().copy("COPY kept_values FROM STDIN (FORMAT binary)") as copy:
            copy.write(data)
        text = conn.execute("SELECT m::text FROM kept_values").fetchone()[0]
        assert text == conn.execute("SELECT rfm_model_of('shop')::text").fetchone()[0]
        mismatches = conn.execute(
            "SELECT count(*) FILTER (WHERE rfm_segment(k.m, c.recency, c.frequency, c.monetary)"
            " IS DISTINCT FROM rfm_segment('shop', c.recency, c.frequency, c.monetary)) FROM e2e_rfm c, kept_values k"
        ).fetchone()[0]
        assert mismatches == 0
        # One byte of the format changed (RFMM\x01 -> RFMM\x09): refused when received.
        damaged = data.replace(b"RFMM\x01", b"RFMM\x09", 1)
        with pytest.raises(psycopg.errors.DataCorrupted, match="format 9 is not one this version of pg_rfm reads"):
            with conn.cursor().copy("COPY kept_values FROM STDIN (FORMAT binary)") as copy:
                copy.write(damaged)
        assert conn.execute("SELECT count(*) FROM kept_values").fetchone()[0] == 1
        conn.execute("DROP TABLE kept_values")
