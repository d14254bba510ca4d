"""The HTML report renders in headless Chromium with the expected charts and segments."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import psycopg

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def chromium(*args, profile):
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          check=True, capture_output=True, timeout=120)


def test_report_renders(dsn, shop):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("SELECT rfm_train('report', %s, k_min => 2, k_max => 8, select_k => 'elbow')", (shop,))
        html = conn.execute("SELECT rfm_report('report')").fetchone()[0]
        k = conn.execute("SELECT k FROM rfm_models WHERE model = 'report' AND active").fetchone()[0]
    out = pathlib.Path(os.environ.get("RFM_TEST_OUT", tempfile.mkdtemp()))
    page = out / "report.html"
    page.write_text(html)
    png = out / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium("--dump-dom", page.as_uri(), profile=profile).stdout.decode()
    with tempfile.TemporaryDirectory() as profile:
        chromium(f"--screenshot={png}", "--window-size=1200,1500", page.as_uri(), profile=profile)
    # The browser parsed the page into 4 charts and one table row per segment.
    assert len(re.findall(r"<svg\b", dom)) == 4
    assert len(re.findall(r'<figure class="chart"', dom)) == 4
    assert len(re.findall(r'<tr class="segment"', dom)) == k
    assert "<script" not in dom
    assert png.exists() and png.stat().st_size > 20_000, "screenshot is not empty"
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
