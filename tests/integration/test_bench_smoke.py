"""`python -m bench --quick`: every figure runs end to end and produces numbers (no timing assertions).

Run as a subprocess: the bench starts its own in-process local stack, which must not share process
environment (AWS_ENDPOINT_URL, bound models) with the session's ``local_stack``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_bench_prints_all_figures_with_targets(tmp_path):
    # Given a fresh results file
    out = tmp_path / "latest.json"
    # When the bench runs at tiny sizes
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    # Then it finished without a broken figure and printed the table
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "calltrack bench" in proc.stdout
    results = json.loads(out.read_text())
    figures = {f["name"]: f for f in results["figures"]}
    assert set(figures) == {"P1", "P2", "P3", "P4", "P5", "P6", "P7", "Rollup", "Cost"}
    rows = results["summary"]
    assert all(row["status"] in ("PASS", "MISS", "INFO") for row in rows), rows
    # And every figure has a measured number; every targeted row says PASS or MISS with a ratio
    for figure in figures.values():
        assert figure["rows"] and all(row["measured"] for row in figure["rows"])
    targeted = [row for row in rows if row["target"] and row["status"] != "INFO"]
    expected = {"P1", "P2", "P3", "P4", "P5", "P6", "P7", "Rollup"}
    assert {row["figure"].split()[0] for row in targeted} >= expected
    assert all(row["status"] in ("PASS", "MISS") for row in targeted)
    assert any(row["figure"].startswith("Cost/1k calls: TOTAL") for row in rows)
    # And the measurements behind the figures are numbers
    assert figures["P2"]["details"]["cold process, new caller"]["requests"] >= 1
    p3 = figures["P3"]["details"]
    assert p3["webhook"]["p50_ms"] > 0 and p3["floor"]["p50_ms"] > 0
    assert all(level["double_leases"] == 0 for level in figures["P4"]["details"]["levels"])
    assert all(size["items_read"] > 0 for size in figures["P5"]["details"]["sizes"].values())
    assert figures["Cost"]["details"]["total_per_1000_calls_usd"] > 0
    # And (issue 24) P7 found pool sizes, renewals read nothing, the rollup burst counted exactly once,
    # and the cost table carries Twilio's side next to AWS
    p7 = figures["P7"]["details"]["levels"]
    assert all(level["policies"] for level in p7.values())
    renewal = next(r for r in figures["P4"]["rows"] if r["figure"].startswith("P4 cost per renewal"))
    assert renewal["status"] == "PASS"
    assert figures["Rollup"]["details"]["burst"]["exactly_once"] is True
    assert any("AWS | Twilio" in row["figure"] for row in figures["Cost"]["rows"])
