"""The ingest benchmark on a tiny input: its stages do the work they claim and its report is whole.

Correctness only. No timing is asserted: the figures belong to `python -m bench`, on a known machine.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import bar_file, ingest
from bench.__main__ import discover

BARS = 2_000


def test_synthetic_bars_are_one_deterministic_alpaca_page() -> None:
    data = ingest.synthetic_bars(BARS)
    assert set(data.page) == {"bars", "next_page_token"} and data.page["next_page_token"] is None
    assert set(data.page["bars"]) == set(ingest.SYMBOLS)
    assert sum(len(bars) for bars in data.page["bars"].values()) == BARS == data.count
    first = data.page["bars"]["SPY"][0]
    assert set(first) == {"t", "o", "h", "l", "c", "v", "n", "vw"} and first["t"].endswith("Z")
    assert ingest.synthetic_bars(BARS).page == data.page


def test_every_bar_is_parsed_passes_validation_and_loads_once(tmp_path: Path) -> None:
    data = ingest.synthetic_bars(BARS)
    batch = ingest.parse_stage(data)
    frame = batch.tables["bars"]
    assert frame.height == BARS and batch.rejected == []
    validation = ingest.validate_stage(frame)
    assert validation.passed.height == BARS and validation.rejected == []
    warehouse = ingest.fresh_warehouse(tmp_path)
    assert ingest.upsert_stage(warehouse, validation.passed) == BARS
    assert ingest.upsert_stage(warehouse, validation.passed) == BARS  # the re-load replaces, adds nothing
    assert ingest.table_rows(warehouse) == BARS


def test_the_benchmark_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert ingest.main(["--bars", str(BARS), "--repeats", "2", "--no-served", "--out", str(out)]) == 0
    results = json.loads((out / "ingest.json").read_text(encoding="utf-8"))
    assert {
        "benchmark",
        "date",
        "machine",
        "config",
        "one_off",
        "counts",
        "stages",
        "end_to_end",
        "served_run",
    } <= set(results)
    assert results["served_run"] is None
    assert {"cores", "load_avg_start", "load_avg_end", "python", "packages"} <= set(results["machine"])
    assert set(results["stages"]) == {"decode_json", "parse", "validate", "upsert_first", "upsert_reload"}
    for figures in results["stages"].values():
        assert {"best_s", "rows_per_s", "runs_s", "load_1m"} <= set(figures) and len(figures["runs_s"]) == 2
    shares = [results["stages"][name]["share_of_end_to_end"] for name in ("parse", "validate", "upsert_first")]
    assert abs(sum(shares) - 1) < 1e-9
    counts = results["counts"]
    assert counts["parse_rejected"] == counts["validation_rejected"] == 0
    assert counts["parsed"] == counts["passed_validation"] == counts["loaded_first"] == counts["rows_in_table"] == BARS
    assert results["end_to_end"]["meets_target"] is None  # the target is judged on a full-size run only
    report = (out / "ingest.md").read_text(encoding="utf-8")
    assert "| parse: `parse_bars` |" in report and "end to end" in report
    assert sorted(path.name for path in out.iterdir()) == ["ingest.json", "ingest.md"]


def test_python_m_bench_finds_the_ingest_benchmark() -> None:
    assert discover()["ingest"] is ingest.main


def test_the_bar_file_benchmark_runs_every_case_and_writes_its_report(tmp_path: Path) -> None:
    assert bar_file.main(["--rows", "3000", "--label", "smoke", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "bar_file-smoke.json").read_text(encoding="utf-8"))
    cases = {case["case"]: case for case in results["cases"]}
    assert [cases[name]["exit_code"] for name in ("all-nan", "outside", "load", "again")] == [2, 3, 0, 0]
    assert cases["all-nan"]["scratch_mb"] == cases["outside"]["scratch_mb"] == 0.0  # failed before loading
    assert not cases["load"]["reused"] and cases["again"]["reused"]
    assert cases["again"]["scratch_mb"] == cases["load"]["scratch_mb"] > 0
    assert "| all-nan |" in (tmp_path / "bar_file-smoke.md").read_text(encoding="utf-8")
