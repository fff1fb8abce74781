"""The `hydra` command as a user runs it: real processes, real exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from warehouse import Warehouse
from warehouse.ingest import IngestionRun, record_run
from warehouse.migrate import latest_known_version

HYDRA = str(Path(sys.executable).with_name("hydra"))


def hydra(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HYDRA, *args], capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200", **(env or {})}
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hydra: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_init_twice_changes_nothing() -> None:
    first = hydra("init")
    assert first.returncode == 0, first.stderr
    # Rich wraps the line at the terminal's width.
    assert (
        "applied 001_feeds.sql, 002_trading.sql, 003_execution.sql, 004_analytics.sql, 005_alerts.sql,"
        " 006_analytics_operations.sql, 009_regime_reason.sql, 010_bars_volume_unknown.sql, 011_run_prices.sql,"
        " 012_reason_codes.sql, 013_ingestion_notes.sql" in " ".join(first.stdout.split())  # the console wraps the line
    )
    before = Path("data/hydra.duckdb").stat().st_size
    second = hydra("init")
    assert second.returncode == 0 and f"already at schema version {latest_known_version()}" in second.stdout
    assert Path("data/hydra.duckdb").stat().st_size == before


def test_commands_on_a_missing_warehouse_say_to_init() -> None:
    for command in (["status"], ["sql", "SELECT 1"]):
        one_line_error(hydra(*command), 3, "run `hydra init` first")


def test_sql_prints_a_table_csv_and_json() -> None:
    hydra("init")
    query = "SELECT 1 AS one, 'a,b' AS text"
    assert "one" in hydra("sql", query).stdout
    assert hydra("sql", query, "--csv").stdout.splitlines() == ["one,text", '1,"a,b"']
    assert json.loads(hydra("sql", query, "--json").stdout) == [{"one": 1, "text": "a,b"}]


def test_sql_is_read_only_and_bad_sql_is_one_line() -> None:
    hydra("init")
    one_line_error(hydra("sql", "SELEC nonsense"), 4, "SQL error: Parser Error")
    one_line_error(hydra("sql", "DELETE FROM bars"), 4, "read-only")


def test_bad_config_is_one_line_and_nonzero() -> None:
    Path("hydra.toml").write_text('[engine.risk]\nprofile = "moderate"\nmax_position = 0.5\n', encoding="utf-8")
    one_line_error(hydra("status"), 2, "max_position = 0.5 is looser than the moderate profile's limit 0.03")


def test_config_shows_settings_and_masks_secrets() -> None:
    result = hydra("config", env={"ALPACA_API_KEY": "PKSECRETVALUE42", "HYDRA_SIM__SEED": "5"})
    assert result.returncode == 0, result.stderr
    assert "PKSECRETVALUE42" not in result.stdout + result.stderr
    assert '"ALPACA_API_KEY": "********"' in result.stdout
    assert '"seed": 5' in result.stdout


def test_bad_arguments_are_usage_errors() -> None:
    result = hydra("sql")
    assert result.returncode == 2 and "Missing argument" in result.stderr


def test_a_lock_held_too_long_is_one_line(tmp_path: Path) -> None:
    hydra("init")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, time; c = duckdb.connect('data/hydra.duckdb'); print('ok', flush=True); time.sleep(20)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        one_line_error(hydra("status", env={"HYDRA_WAREHOUSE__LOCK_DEADLINE_S": "0.5"}), 3, "locked by another process")
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_status_prints_each_line_of_what_the_last_runs_could_not_get() -> None:
    assert hydra("init").returncode == 0
    note = (
        "binance open interest history BTCUSDT: the source keeps 30 days;"
        " 2026-11-08..2026-12-07 loaded, 2026-01-01..2026-11-08 not available"
    )
    started = datetime(2026, 12, 7, 15, tzinfo=UTC)
    run = IngestionRun("run-1", "binance", started, started + timedelta(seconds=4), "ok", notes=(note,))
    record_run(Warehouse(Path("data/hydra.duckdb")), run, {"funding_rates": 1}, 0)

    status = hydra("status")

    assert status.returncode == 0, status.stderr
    assert note in status.stdout.splitlines()


@pytest.mark.slow
def test_run_trades_a_simulated_window_and_twice_leaves_the_feeds_identical() -> None:
    # A short run: one session of history, six hours of trading, an hourly cycle.
    env = {"HYDRA_SIM__WARMUP_SESSIONS": "1", "HYDRA_SIM__DAYS": "0.25", "HYDRA_SIM__CYCLE_MINUTES": "60"}
    first = hydra("run", env=env)
    assert first.returncode == 0, first.stderr
    assert "orders by strategy" in first.stdout and "cycles" in first.stdout
    feeds = " UNION ALL ".join(
        f"SELECT '{t}' AS t, count(*) AS n FROM {t}"
        for t in ("bars", "funding_rates", "open_interest", "economic_events", "ingestion_runs", "market_series")
    )
    once = hydra("sql", feeds, "--json").stdout
    assert hydra("run", env=env).returncode == 0
    assert hydra("sql", feeds, "--json").stdout == once  # the same simulated feeds, loaded again, add nothing
    counts = {row["t"]: row["n"] for row in json.loads(once)}
    # Every feed over the window, and the calendar once more for the week after it.
    assert counts["bars"] > 19 * 390 and counts["ingestion_runs"] == 9
    runs = json.loads(hydra("sql", "SELECT status, count(*) AS n FROM runs GROUP BY status", "--json").stdout)
    assert runs == [{"status": "completed", "n": 2}]  # each trading run is its own run
    status = hydra("status")
    assert status.returncode == 0 and "last ingestion per feed" in status.stdout
    exported = hydra("trade-log", "--out", "log.json")
    assert exported.returncode == 0, exported.stderr
    log = json.loads(Path("log.json").read_text(encoding="utf-8"))
    assert log["run_id"].startswith("sim-") and log["overview"]["cycles"] == 6


@pytest.mark.parametrize("command", [["run", "--mode", "paper"], ["trade", "--once", "--mode", "paper"]])
def test_paper_trading_without_keys_names_the_missing_variable(command: list[str]) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    result = subprocess.run(
        [HYDRA, *command], capture_output=True, text=True, timeout=120, env={**environment, "COLUMNS": "200"}
    )
    one_line_error(result, 2, "ALPACA_API_KEY")
    keyed = {**environment, "COLUMNS": "200", "ALPACA_API_KEY": "PKTEST"}
    result = subprocess.run([HYDRA, *command], capture_output=True, text=True, timeout=120, env=keyed)
    one_line_error(result, 2, "ALPACA_SECRET_KEY")


def test_run_refuses_a_mode_it_cannot_trade() -> None:
    one_line_error(hydra("run", "--mode", "backtest"), 2, "hydra run trades in sim or paper mode, not backtest")


def test_trade_log_of_an_empty_warehouse_says_what_to_do() -> None:
    assert hydra("init").returncode == 0
    one_line_error(hydra("trade-log"), 3, "no runs yet")


def test_backtest_without_history_says_what_to_do() -> None:
    one_line_error(hydra("backtest", "--start", "2026-03-09", "--end", "2026-03-10"), 3, "hydra init")
    assert hydra("init").returncode == 0
    one_line_error(hydra("backtest", "--start", "2026-03-09", "--end", "2026-03-10"), 3, "no 1Min bars are stored")
    one_line_error(hydra("backtest", "--start", "2026-03-10", "--end", "2026-03-09"), 2, "--start must be before")
    one_line_error(
        hydra("backtest", "--start", "2026-03-09", "--end", "2026-03-10", "--data", "nope.csv"), 2, "nope.csv"
    )


def test_backtest_of_a_bar_file_replays_it_apart_and_records_the_run_in_the_warehouse() -> None:
    from adapters.simulator import MarketSimulator

    start = datetime(2026, 3, 2, tzinfo=UTC)
    bars = MarketSimulator(seed=7, epoch=start).generate(start, start + timedelta(days=8))["bars"]
    minute = bars.filter(pl.col("timeframe") == "1Min").select(
        "symbol", "ts_event", "open", "high", "low", "close", "volume"
    )
    bad = minute.head(1).with_columns(pl.col("high") * 0.5, pl.col("ts_event") + timedelta(seconds=1))  # high < low
    pl.concat([minute, bad]).write_csv("mine.csv")
    result = hydra(
        "backtest",
        "--data",
        "mine.csv",
        "--start",
        "2026-03-09T14:30",
        "--end",
        "2026-03-09T20:30",
        "--cycle-minutes",
        "60",
    )
    assert result.returncode == 0, result.stderr
    # Prices alone: the output begins with which strategies can run on them, and why the others cannot.
    assert result.stdout.lstrip().startswith("strategies on this data")
    assert re.search(r"liquidation_cascade +│ no +│ input_missing: funding_rates, open_interest \(", result.stdout)
    assert re.search(r"precious_metals +│ yes +│ +│ 6 ", result.stdout)
    checked = hydra("sql", "SELECT can_run, count(*) AS n FROM run_strategies GROUP BY ALL ORDER BY ALL", "--json")
    assert json.loads(checked.stdout) == [{"can_run": False, "n": 3}, {"can_run": True, "n": 2}]
    assert f"{minute.height} bars loaded, 1 quarantined" in result.stdout
    runs = json.loads(hydra("sql", "SELECT mode, status, label FROM runs", "--json").stdout)
    assert runs == [{"mode": "backtest", "status": "completed", "label": "backtest of mine.csv"}]
    cycles = json.loads(hydra("sql", "SELECT count(*) AS n FROM cycles", "--json").stdout)
    assert cycles == [{"n": 6}]
    # The file's bars stay in the backtest's own warehouse, never among the feeds'.
    assert json.loads(hydra("sql", "SELECT count(*) AS n FROM bars", "--json").stdout) == [{"n": 0}]


def _minute_bars(path: str, minutes: int = 1440) -> None:
    """A day of BTC/USD minute bars from 2026-03-02 00:00 UTC."""
    start = datetime(2026, 3, 2, tzinfo=UTC)
    pl.DataFrame(
        {
            "symbol": "BTC/USD",
            "ts_event": pl.datetime_range(start, start + timedelta(minutes=minutes - 1), "1m", eager=True),
            "open": 90_000.0,
            "high": 90_100.0,
            "low": 89_900.0,
            "close": 90_050.0,
            "volume": 2.0,
        }
    ).write_csv(path)


def _scratch_files() -> list[str]:
    folder = Path("data/backtests")
    return sorted(path.name for path in folder.glob("*.duckdb*")) if folder.exists() else []


FILE_WINDOW = ("--start", "2026-03-02T12:00", "--end", "2026-03-02T13:00", "--cycle-minutes", "60")


def test_a_bar_file_loads_once_per_content_and_the_scratch_folder_keeps_within_its_limit() -> None:
    _minute_bars("mine.csv")
    first = hydra("backtest", "--data", "mine.csv", *FILE_WINDOW)
    assert first.returncode == 0, first.stderr
    assert "1440 bars loaded, 0 quarantined" in first.stdout and "reused" not in first.stdout
    [scratch] = _scratch_files()

    Path("renamed.csv").write_bytes(Path("mine.csv").read_bytes())  # the same content under another name
    again = hydra("backtest", "--data", "renamed.csv", *FILE_WINDOW)
    assert again.returncode == 0, again.stderr
    assert "1440 bars loaded, 0 quarantined" in again.stdout and "loaded before: reused" in again.stdout
    assert _scratch_files() == [scratch]  # and the run's own copy is gone
    runs = json.loads(hydra("sql", "SELECT count(*) AS n FROM runs", "--json").stdout)
    assert runs == [{"n": 2}]

    # A folder over its limit drops the least recently used scratch, never the one in use.
    _minute_bars("other.csv", minutes=1439)
    tight = hydra("backtest", "--data", "other.csv", *FILE_WINDOW, env={"HYDRA_BACKTEST__SCRATCH_LIMIT_GB": "1e-9"})
    assert tight.returncode == 0, tight.stderr
    [kept] = _scratch_files()
    assert kept != scratch and kept.startswith("other-")


def test_a_window_outside_the_file_fails_before_loading_it_naming_the_files_range() -> None:
    _minute_bars("mine.csv")
    one_line_error(
        hydra("backtest", "--data", "mine.csv", "--start", "2026-03-05", "--end", "2026-03-06"),
        3,
        "mine.csv: its bars run from 2026-03-02 00:00 to 2026-03-02 23:59 UTC; "
        "the window 2026-03-05 00:00 .. 2026-03-06 00:00 is outside them",
    )
    assert _scratch_files() == []  # nothing was loaded


def test_a_file_without_a_usable_row_fails_before_loading_it() -> None:
    rows = "".join(f"SPY,2026-03-02 14:3{minute},NaN,NaN,NaN,NaN,NaN\n" for minute in range(3))
    Path("all_nan.csv").write_text("symbol,ts_event,open,high,low,close,volume\n" + rows, encoding="utf-8")
    one_line_error(
        hydra("backtest", "--data", "all_nan.csv", *FILE_WINDOW[:4]),
        2,
        "none of its 3 rows has a symbol, a time and a positive close: nothing to load",
    )
    assert _scratch_files() == []


def test_a_bundles_bad_rows_are_quarantined_with_their_reasons_and_the_rest_loads() -> None:
    folder = Path("bundle")
    folder.mkdir()
    _minute_bars(str(folder / "bars.csv"))
    (folder / "funding_rates.csv").write_text(
        "venue,symbol,ts_event,funding_rate\n"
        "binance-usdm,BTCUSDT,2026-03-02T00:00:00Z,0.0001\n"
        "binance-usdm,=HYPERLINK(1),2026-03-02T08:00:00Z,0.0002\n"
        "binance-usdm,BTCUSDT,2026-03-02T16:00:00Z,0.0003\n",
        encoding="utf-8",
    )
    pl.DataFrame(
        {
            "source": ["wire", "wire"],
            "item_id": ["1", "2"],
            "ts_event": [datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC)],
            "title": ["OpenAI ships a model", "Anthropic ships a model"],
            # A NOT NULL column left empty: before, it passed validation and failed the insert
            # (a ConstraintException, the whole load gone).
            "matched_tickers": pl.Series([["LZ"], None], dtype=pl.List(pl.String)),
        }
    ).write_parquet(folder / "headlines.parquet")
    result = hydra("backtest", "--data", "bundle", *FILE_WINDOW)
    assert result.returncode == 0, result.stderr
    assert "bundle/bars.csv: 1440 bars loaded, 0 quarantined" in result.stdout
    assert "bundle/funding_rates.csv: 2 funding_rates loaded, 1 quarantined" in result.stdout
    assert "bundle/headlines.parquet: 1 headlines loaded, 1 quarantined" in result.stdout
    [scratch] = _scratch_files()
    with duckdb.connect(f"data/backtests/{scratch}", read_only=True) as con:
        quarantined = con.execute("SELECT feed, payload, reason FROM quarantine ORDER BY feed").fetchall()
    assert [(feed, reason.split("(")[0]) for feed, _, reason in quarantined] == [
        ("funding_rates-file", "funding_rates: expect_column_values_to_match_regex"),
        ("headlines-file", "headlines: expect_column_values_to_not_be_null"),
    ]
    assert "HYPERLINK" in quarantined[0][1]
    assert "Anthropic" in quarantined[1][1] and "column=matched_tickers" in quarantined[1][2]

    # The same files in another folder are the same content: loaded once.
    shutil.copytree(folder, "renamed")
    again = hydra("backtest", "--data", "renamed", *FILE_WINDOW)
    assert again.returncode == 0, again.stderr
    assert "loaded before: reused" in again.stdout and _scratch_files() == [scratch]


def test_a_bad_bundle_is_one_line_and_loads_nothing() -> None:
    folder = Path("bundle")
    folder.mkdir()
    (folder / "funding_rates.csv").write_text("venue,symbol,ts_event,funding_rate\n", encoding="utf-8")
    one_line_error(hydra("backtest", "--data", "bundle", *FILE_WINDOW), 2, "bundle: no bars file")
    _minute_bars(str(folder / "bars.csv"))
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")
    one_line_error(
        hydra("backtest", "--data", "bundle", *FILE_WINDOW),
        2,
        "bundle/notes.txt: not a table's file; a data folder holds <table>.parquet or <table>.csv, a table one of "
        "bars, funding_rates, open_interest, premium_index, economic_events, margin_notices, margin_rates, "
        "github_releases, repo_stats, headlines, market_series, metal_premiums",
    )
    (folder / "notes.txt").unlink()
    (folder / "market_series.csv").write_text("date,value\n2026-03-02,18\n", encoding="utf-8")
    one_line_error(hydra("backtest", "--data", "bundle", *FILE_WINDOW), 2, "missing column(s) series")
    (folder / "market_series.csv").unlink()
    one_line_error(
        hydra("backtest", "--data", "bundle", "--start", "2026-03-05", "--end", "2026-03-06"),
        3,
        "bundle/bars.csv: its bars run from 2026-03-02 00:00 to 2026-03-02 23:59 UTC",
    )
    assert _scratch_files() == []


def test_a_bad_sweep_or_walk_forward_request_is_refused_before_any_flow_starts() -> None:
    Path("sweep.toml").write_text(
        '[sweep]\nstart = 2026-03-09T00:00:00Z\n[grid]\n"sim.fee_bps" = [1]\n', encoding="utf-8"
    )
    one_line_error(hydra("backtest", "--sweep", "sweep.toml"), 2, "needs start and end")
    one_line_error(hydra("backtest", "--walk-forward"), 2, "--start and --end are required")
    window = ("--start", "2026-03-01", "--end", "2026-03-20")
    one_line_error(hydra("backtest", "--walk-forward", *window, "--train", "sixty"), 2, "--train 'sixty'")


def test_bad_input_of_every_kind_is_one_line_and_writes_nothing() -> None:
    assert hydra("init").returncode == 0
    Path("bad.csv").write_text("symbol,ts_event,open\nSPY,2026-03-09,1\n", encoding="utf-8")
    before = {path: path.read_bytes() for path in Path("data").rglob("*") if path.is_file()}
    window = ("--start", "2026-03-09", "--end", "2026-03-10")
    cases = [
        (hydra("run", env={"HYDRA_ENGINE__RISK__MAX_POSITION": "0.5"}), 2, "looser than"),
        (hydra("ingest", "nope"), 2, "unknown feed(s) nope"),
        (hydra("backtest", *window, "--data", "bad.csv"), 2, "missing column(s)"),
        (hydra("sql", "DELETE FROM bars"), 4, "SQL error"),
        (hydra("sql", "SELEC 1"), 4, "SQL error"),
        (hydra("backtest", "--start", "yesterday", "--end", "today"), 2, "Invalid value"),
    ]
    for result, code, fragment in cases:
        assert result.returncode == code, result.stderr
        assert fragment in result.stderr and "Traceback" not in result.stderr
    after = {path: path.read_bytes() for path in Path("data").rglob("*") if path.is_file()}
    assert after == before
