"""Backtests on real market data and on data in the real format, as a researcher runs them.

Each test runs `hydra backtest --data ...` as a user would and reads the run's rows back.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from real_format import crypto_bars, minute_bars, write_csv

from bench.regime_episodes import episodes
from warehouse.sqlfiles import read_sql

HYDRA = str(Path(sys.executable).with_name("hydra"))
REAL = Path(__file__).resolve().parent / "data" / "real"


def hydra(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HYDRA, *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "HYDRA_WAREHOUSE__PATH": str(cwd / "data" / "hydra.duckdb")},
    )


def completed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def run_rows(cwd: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(cwd / "data" / "hydra.duckdb"), read_only=True) as con:
        run_id = con.execute("SELECT max_by(run_id, started_at) FROM runs").fetchone()[0]  # type: ignore[index]
        return con.execute(sql, {"run_id": run_id}).fetchall()


@pytest.mark.slow
def test_spy_minutes_alone_across_holidays_give_a_regime_every_session(tmp_path: Path) -> None:
    """Issue 15, defects 1 and 2: SPY minutes without VIXY or HYG made the HMM's fit degenerate
    (hmmlearn: "startprob_ must sum to 1 (got nan)", a traceback, the run left `running`); and
    after a holiday or half day the regime stalled for a week (its 8-day window held too few bars).
    Here 10 weeks of SPY minutes on the real calendar, 3 July 2018 a half day, 4 July a holiday."""
    data = write_csv(
        minute_bars("SPY", date(2018, 5, 1), date(2018, 7, 13), start_price=265.0, seed=0), tmp_path / "spy.csv"
    )
    out = completed(
        hydra(
            "backtest",
            "--data",
            str(data),
            "--start",
            "2018-06-25",
            "--end",
            "2018-07-13",
            "--cycle-minutes",
            "60",
            cwd=tmp_path,
        )
    )
    assert "completed" in out or "cycles" in out
    sessions = run_rows(
        tmp_path,
        "SELECT date_trunc('day', ts_event)::DATE AS day, bool_and(evaluated), any_value(reason) FROM regimes "
        "WHERE run_id = $run_id AND extract('isodow' FROM ts_event) < 6 GROUP BY ALL ORDER BY day",
    )
    after_the_holiday = [row for row in sessions if row[0] >= date(2018, 7, 5)]
    assert after_the_holiday and all(evaluated for _, evaluated, _ in sessions), sessions
    assert {reason for _, _, reason in sessions} == {"rules on prices alone (no fear or credit gauge)"}


def real_closes(tmp_path: Path) -> Path:
    """SPY, TLT and LQD's real daily closes (2008-2016), as a close-only file of dates."""
    with gzip.open(REAL / "etf_closes_daily.csv.gz", "rt") as source:
        wide = pl.read_csv(source, try_parse_dates=True)
    long = wide.unpivot(index="date", on=["SPY", "TLT", "LQD"], variable_name="symbol", value_name="close")
    path = tmp_path / "etf_closes.csv"
    long.drop_nulls("close").write_csv(path)
    return path


@pytest.mark.slow
def test_real_daily_closes_backtest_at_a_daily_cadence_and_name_the_crises(tmp_path: Path) -> None:
    """Issue 15, defect 4: a file of daily closes without volume was refused ("no minute bars"),
    its rows quarantined whole (volume not null)."""
    data = real_closes(tmp_path)
    completed(hydra("backtest", "--data", str(data), "--start", "2008-06-02", "--end", "2009-06-30", cwd=tmp_path))
    regimes = dict(
        run_rows(
            tmp_path,
            "SELECT ts_event::DATE, regime FROM regimes WHERE run_id = $run_id AND evaluated ORDER BY ts_event",
        )
    )
    for episode in episodes():
        days = [day for day in regimes if episode.start <= day <= episode.end]
        if episode.start.year in (2008, 2009) and days:
            hits = sum(regimes[day] in {r.value for r in episode.accepted} for day in days)
            assert hits / len(days) >= 0.9, (episode.name, hits, len(days))
    cycles = run_rows(tmp_path, "SELECT count(*) FROM cycles WHERE run_id = $run_id")[0][0]
    assert 250 < cycles < 280, "one cycle a session"
    # cross_asset's risk-off view runs on daily prices alone: into TLT in the 2008 crisis, filled
    # at the open of the session its cycle decided at.
    filled = run_rows(
        tmp_path,
        "SELECT strategy, symbol, count(*) FROM orders WHERE run_id = $run_id AND status = 'filled' GROUP BY ALL",
    )
    assert [(strategy, symbol) for strategy, symbol, _ in filled] == [("cross_asset", "TLT")]
    assert filled[0][2] >= 10
    assert run_rows(tmp_path, read_sql("checks/pnl_not_reconciled")) == [], "trades' P&L is the change in equity"


@pytest.mark.slow
def test_thirty_minute_bars_without_a_timeframe_are_decided_every_thirty_minutes(tmp_path: Path) -> None:
    """Issue 15, defect 5: 30-minute bars without a `timeframe` column loaded as 1-minute bars,
    each known 29 minutes before it closed. Here the spacing says 30 minutes, the cycle decides on
    them every 30 minutes, and the strategies that need minute bars say so."""
    start = datetime(2024, 3, 1, tzinfo=UTC)
    bars = pl.concat(
        [
            crypto_bars("BTC/USD", start, 30, minutes=30, start_price=60_000.0, seed=1),
            crypto_bars("ETH/USD", start, 30, minutes=30, start_price=3_400.0, seed=2),
        ]
    )
    data = write_csv(bars, tmp_path / "crypto.csv")
    out = completed(
        hydra("backtest", "--data", str(data), "--start", "2024-03-20", "--end", "2024-03-27", cwd=tmp_path)
    )
    assert "cycles every 30 minutes on 30Min bars" in out
    abstentions = {
        strategy: (code, detail)
        for strategy, code, detail in run_rows(
            tmp_path,
            "SELECT strategy, any_value(code), any_value(detail) FROM strategy_abstentions WHERE run_id = $run_id"
            " GROUP BY ALL",
        )
    }
    assert abstentions["liquidation_cascade"] == (
        "timeframe_too_coarse",
        "needs 1Min bars or finer; the cycle decides on 30Min",
    )
    assert "cross_asset" not in abstentions, "lead-lag over hours runs on 30-minute bars"
    # The check before the run said so already.
    checked = dict(run_rows(tmp_path, "SELECT strategy, code FROM run_strategies WHERE run_id = $run_id"))
    assert checked["liquidation_cascade"] == "timeframe_too_coarse" and checked["cross_asset"] is None
