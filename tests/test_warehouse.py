from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pytest
from lock_holder import hold_lock

from warehouse import UnknownTableError, Warehouse, WarehouseLockedError, WarehouseMissingError, WarehouseTooNewError
from warehouse.connection import in_transaction
from warehouse.ingest import IngestionRun, record_ingestion
from warehouse.load import natural_key, upsert
from warehouse.migrate import installed_version, latest_known_version, migrate
from warehouse.read import (
    DecisionHistory,
    DecisionWindows,
    feed_health,
    last_ingestions,
    snapshot,
    table_row_counts,
)
from warehouse.sqlfiles import read_sql, render, schema_files, table_names
from warehouse.tables import (
    FEED_OF_TABLE,
    FEED_TABLES,
    INGESTION_TABLES,
    META_TABLES,
    OPERATIONS_TABLES,
    TRADING_TABLES,
)

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def bar_rows(
    closes: list[float], *, start: datetime = T0, ingested_delay: timedelta = timedelta(minutes=1)
) -> pl.DataFrame:
    times = [start + timedelta(minutes=i) for i in range(len(closes))]
    return pl.DataFrame(
        {
            "symbol": ["SPY"] * len(closes),
            "timeframe": ["1Min"] * len(closes),
            "ts_event": times,
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [100.0] * len(closes),
            "source": ["test"] * len(closes),
            "ts_ingested": [t + ingested_delay for t in times],
        }
    )


def test_migrate_is_idempotent_and_recorded(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = migrate(warehouse)
    assert first == [
        "001_feeds.sql",
        "002_trading.sql",
        "003_execution.sql",
        "004_analytics.sql",
        "005_alerts.sql",
        "006_analytics_operations.sql",
        "009_regime_reason.sql",
        "010_bars_volume_unknown.sql",
        "011_run_prices.sql",
        "012_reason_codes.sql",
        "013_ingestion_notes.sql",
        "014_cycle_readiness.sql",
        "015_broker_refusals.sql",
        "016_run_owner.sql",
    ]
    assert migrate(warehouse) == []
    with warehouse.connect() as con:
        assert installed_version(con) == latest_known_version()
        rows = con.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
    assert rows == [
        (1, "001_feeds.sql"),
        (2, "002_trading.sql"),
        (3, "003_execution.sql"),
        (4, "004_analytics.sql"),
        (5, "005_alerts.sql"),
        (6, "006_analytics_operations.sql"),
        (9, "009_regime_reason.sql"),
        (10, "010_bars_volume_unknown.sql"),
        (11, "011_run_prices.sql"),
        (12, "012_reason_codes.sql"),
        (13, "013_ingestion_notes.sql"),
        (14, "014_cycle_readiness.sql"),
        (15, "015_broker_refusals.sql"),
        (16, "016_run_owner.sql"),
    ]


# Reasons as the code before migration 012 worded them, and the code and detail it gives each.
OLD_ABSTENTIONS = [
    ("disabled in configuration", "disabled", "in configuration"),
    (
        "needs 1Hour bars or finer; the cycle decides on 1Day",
        "timeframe_too_coarse",
        "needs 1Hour bars or finer; the cycle decides on 1Day",
    ),
    ("input funding_rates missing", "input_missing", "funding_rates"),
    (
        "input funding_rates stale: newest row is 1 day, 2:00:00 old (max 9:00:00)",
        "input_stale",
        "funding_rates: newest row is 1 day, 2:00:00 old (max 9:00:00)",
    ),
    ("error: ZeroDivisionError: a bug", "error", "ZeroDivisionError: a bug"),
    ("input bars has no IGV (the sector gauge)", "symbol_missing", "input bars has no IGV (the sector gauge)"),
    (
        "no funding, open interest or closed bars for BTC/USD, ETH/USD",
        "symbol_missing",
        "no funding, open interest or closed bars for BTC/USD, ETH/USD",
    ),
    (
        "input bars does not reach back before the release",
        "history_short",
        "input bars does not reach back before the release",
    ),
    ("a reason no code ever made", None, "a reason no code ever made"),
]
OLD_DECISIONS = [
    (
        ["kill_switch: HALTED until the trading day after 2026-03-03", "max_position"],
        ["kill_switch", "max_position"],
        ["HALTED until the trading day after 2026-03-03", None],
    ),
    (["cooldown until 2026-03-02T18:30:00+00:00"], ["cooldown"], ["until 2026-03-02T18:30:00+00:00"]),
    (
        ["event_exposure: NFP (until 2026-03-06T13:30:00+00:00)"],
        ["event_exposure"],
        ["NFP (until 2026-03-06T13:30:00+00:00)"],
    ),
    (["max_position", "max_asset"], ["max_position", "max_asset"], [None, None]),
]


def test_migration_12_gives_the_reasons_recorded_before_it_their_codes_and_details(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.connect(create=True) as con:
        con.execute(read_sql("meta/schema_version_create"))
        for version, name, text in schema_files():
            if version < 12:
                con.execute(text)
                con.execute(
                    read_sql("meta/schema_version_record"), {"version": version, "name": name, "applied_at": T0}
                )
        for index, (reason, _, _) in enumerate(OLD_ABSTENTIONS):
            con.execute("INSERT INTO strategy_abstentions VALUES ('r', ?, ?, ?, ?)", [T0, f"s{index}", reason, T0])
        for index, (reasons, _, _) in enumerate(OLD_DECISIONS):
            con.execute(
                "INSERT INTO risk_decisions (run_id, proposal_id, ts_event, approved, qty, notional, reasons,"
                " ts_ingested) VALUES ('r', ?, ?, false, 0, 0, ?, ?)",
                [f"p{index}", T0, reasons, T0],
            )
    assert migrate(warehouse)[0] == "012_reason_codes.sql"
    with warehouse.connect() as con:
        abstentions = con.execute("SELECT reason, code, detail FROM strategy_abstentions ORDER BY strategy")
        assert abstentions.fetchall() == OLD_ABSTENTIONS
        decisions = con.execute("SELECT reasons, reason_codes, reason_details FROM risk_decisions ORDER BY proposal_id")
        assert decisions.fetchall() == [tuple(row) for row in OLD_DECISIONS]
        rejections = con.execute("SELECT code, rejections FROM analytics_risk_rejections ORDER BY code").fetchall()
    assert rejections == [
        ("cooldown", 1),
        ("event_exposure", 1),
        ("kill_switch", 1),
        ("max_asset", 1),
        ("max_position", 2),
    ]


def test_every_schema_table_is_classified(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        existing = table_names(con)
    classified = set(FEED_TABLES) | set(INGESTION_TABLES) | set(TRADING_TABLES) | set(META_TABLES)
    classified |= set(OPERATIONS_TABLES)
    assert existing == classified
    assert set(FEED_OF_TABLE) == set(FEED_TABLES)


def test_every_fact_table_has_both_timestamps_and_a_natural_key(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        for table in FEED_TABLES + TRADING_TABLES:
            columns = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
            assert {"ts_ingested"} <= columns or table in {"runs", "engine_state"}, table
            assert natural_key(con, table), table


def test_a_warehouse_newer_than_the_code_is_refused(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        con.execute(
            read_sql("meta/schema_version_record"), {"version": 999, "name": "999_future.sql", "applied_at": T0}
        )
    with pytest.raises(WarehouseTooNewError, match="schema version 999"):
        migrate(warehouse)


def test_missing_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WarehouseMissingError, match="hydra init"), Warehouse(tmp_path / "none.duckdb").connect():
        pass


# Sample values for every named parameter used anywhere under sql/: a new parameter makes
# the test below fail until it is given one, so no SQL file goes unexecuted.
SAMPLE_PARAMETERS = {
    "table": "bars",
    "as_of": T0,
    "first": T0,
    "last": T0,
    "since": None,
    "version": 900,
    "name": "900_sample.sql",
    "applied_at": T0,
    "timeframe": "1Min",
    "feed": "github",
    "series": "VIX",
    "venue": "binance-usdm",
    "period": "5m",
    "bars_since": T0,
    "run_id": "r",
    "parent_run_id": None,
    "max_position": 0.03,
    "max_trades_per_day": 30,
    "mode": "sim",
    "label": "sample",
    "profile": "moderate",
    "config": "{}",
    "limits": "{}",
    "window_start": T0,
    "window_end": T0,
    "started_at": T0,
    "ended_at": None,
    "status": "running",
    "key": "engine",
    "trade_id": "t",
    "exit_ts": T0,
    "exit_price": 1.0,
    "exit_reason": "stop",
    "pnl": -1.0,
    "fees": 0.0,
    "exit_fee": 0.0,
    "qty": 1.0,
    "closes_trade": True,
    "realized_r": -1.0,
    "ts_ingested": T0,
    "day_since": T0,
    "client_order_ids": ["hy-1"],
    "broker_order_ids": ["b-1"],
    "kind": "feed_down",
    "subject": "cme",
    "after": T0,
    "until": T0,
    "symbols": ["SPY"],
    "symbol": "SPY",
    "start": T0,
    "end": T0,
    "owner_pid": 4242,
    "owner_host": "host",
    "heartbeat_at": T0,
    "status_reason": None,
    "reason": "owner gone",
    "found_at": T0,
    "at": T0,
}


def all_sql_files() -> list[str]:
    found = []

    def walk(package: str) -> None:
        for entry in resources.files(package).iterdir():
            if entry.is_dir() and not entry.name.startswith("__"):
                walk(f"{package}.{entry.name}")
            elif entry.name.endswith(".sql"):
                found.append(f"{package.removeprefix('sql').lstrip('.').replace('.', '/')}/{entry.name[:-4]}")

    walk("sql")
    return sorted(found)


@pytest.mark.parametrize("name", [n for n in all_sql_files() if not n.startswith("schema/")])
def test_every_sql_file_runs_on_a_fresh_warehouse(warehouse: Warehouse, name: str) -> None:
    with warehouse.connect() as con, in_transaction(con):
        text = read_sql(name)
        if "{table}" in text:
            # Statements over any table take a feed table; those over a run's rows, a trading one.
            text = render(con, name, table="trades" if "run_id" in text else "bars")
            con.register("upsert_batch", bar_rows([1.0]))
        parameters = set(re.findall(r"\$([a-z_]+)", text))
        assert parameters <= set(SAMPLE_PARAMETERS), f"{name} uses unknown parameters {parameters}"
        con.execute(text, {key: SAMPLE_PARAMETERS[key] for key in parameters})
        con.execute("ROLLBACK")
        con.execute("BEGIN")


def test_schema_files_are_found_by_package_name_from_any_directory(tmp_path: Path) -> None:
    names = [n for n in all_sql_files() if n.startswith("schema/")]
    assert names == [
        f"schema/{name}"
        for name in (
            "001_feeds",
            "002_trading",
            "003_execution",
            "004_analytics",
            "005_alerts",
            "006_analytics_operations",
            "009_regime_reason",
            "010_bars_volume_unknown",
            "011_run_prices",
            "012_reason_codes",
            "013_ingestion_notes",
            "014_cycle_readiness",
            "015_broker_refusals",
            "016_run_owner",
        )
    ]


def test_upsert_is_idempotent_and_keeps_the_last_row_of_a_key(warehouse: Warehouse) -> None:
    batch = pl.concat([bar_rows([10.0, 11.0, 12.0]), bar_rows([99.0])])  # the first bar twice
    assert upsert(warehouse, {"bars": batch}) == {"bars": 3}
    assert upsert(warehouse, {"bars": batch}) == {"bars": 3}
    with warehouse.connect() as con:
        rows = con.execute("SELECT ts_event, close FROM bars ORDER BY ts_event").fetchall()
    assert [close for _, close in rows] == [99.0, 11.0, 12.0]


def test_upsert_of_several_tables_is_all_or_nothing(warehouse: Warehouse) -> None:
    bad_funding = pl.DataFrame(
        {"venue": ["x"], "symbol": [None], "ts_event": [T0], "funding_rate": [0.0], "ts_ingested": [T0]}
    )
    with pytest.raises(duckdb.ConstraintException):
        upsert(warehouse, {"bars": bar_rows([1.0, 2.0]), "funding_rates": bad_funding})
    assert table_row_counts(warehouse)["bars"] == 0


def test_upsert_refuses_an_unknown_table(warehouse: Warehouse) -> None:
    with pytest.raises(UnknownTableError):
        upsert(warehouse, {"bars; DROP TABLE bars": bar_rows([1.0])})


def test_snapshot_sees_only_what_was_known_at_as_of(warehouse: Warehouse) -> None:
    # Bar i is learned one minute after it opens: at T0+2m only bars 0 and 1 are known.
    upsert(warehouse, {"bars": bar_rows([1.0, 2.0, 3.0, 4.0])})
    known = snapshot(warehouse, T0 + timedelta(minutes=2), tables=["bars"])["bars"]
    assert known.get_column("close").to_list() == [1.0, 2.0]
    since = snapshot(warehouse, T0 + timedelta(minutes=10), since=T0 + timedelta(minutes=2), tables=["bars"])
    assert since["bars"].get_column("close").to_list() == [3.0, 4.0]
    everything = snapshot(warehouse, T0 + timedelta(minutes=10))
    assert set(everything) == set(FEED_TABLES)
    with pytest.raises(UnknownTableError):
        snapshot(warehouse, T0, tables=["nope"])


def test_decision_tables_read_each_table_over_its_own_lookback(warehouse: Warehouse) -> None:
    daily = bar_rows([7.0], start=T0 - timedelta(days=30)).with_columns(pl.lit("1Day").alias("timeframe"))
    upsert(warehouse, {"bars": pl.concat([bar_rows([1.0, 2.0, 3.0], start=T0 - timedelta(days=2)), daily])})
    event = pl.DataFrame(
        {
            "source": ["bls"],
            "event_type": ["CPI"],
            "ts_event": [T0 + timedelta(days=3)],
            "title": ["CPI"],
            "importance": [3],
            "all_day": [False],
            "ts_ingested": [T0 - timedelta(days=5)],
        }
    )
    upsert(warehouse, {"economic_events": event})
    windows = DecisionWindows(
        timeframe="1Min",
        bars_since=lambda moment: moment - timedelta(days=1),
        daily_bars_since=lambda moment: moment - timedelta(days=60),
        facts=timedelta(days=10),
    )
    tables = dict(DecisionHistory.load(warehouse, T0, T0, windows).at(T0))
    assert tables["bars"].get_column("timeframe").to_list() == ["1Day"]  # the minute bars are 2 days old
    assert tables["economic_events"].get_column("event_type").to_list() == ["CPI"]  # scheduled ahead, known now
    assert set(tables) == set(FEED_TABLES)


def test_feed_health_reports_the_last_run_and_the_last_success(warehouse: Warehouse) -> None:
    runs = [(0, "ok", None), (5, "failed", "HTTP 500"), (9, "ok", None)]
    for minutes, status, error in runs:
        moment = T0 + timedelta(minutes=minutes)
        record_ingestion(warehouse, IngestionRun(f"r{minutes}", "binance", moment, moment, status, error=error), {})
    as_of = T0 + timedelta(minutes=6)
    health = feed_health(warehouse, as_of, as_of).rows()
    assert health == [("binance", T0 + timedelta(minutes=5), T0, "failed", "HTTP 500")]
    assert feed_health(warehouse, T0 - timedelta(minutes=1), T0 - timedelta(minutes=1)).is_empty()
    # Over a window: the run in force at its start, then every later one, each with its last success.
    timeline = feed_health(warehouse, T0 + timedelta(minutes=1), T0 + timedelta(hours=1)).rows()
    assert timeline == [
        ("binance", T0, T0, "ok", None),
        ("binance", T0 + timedelta(minutes=5), T0, "failed", "HTTP 500"),
        ("binance", T0 + timedelta(minutes=9), T0 + timedelta(minutes=9), "ok", None),
    ]


def test_record_ingestion_writes_rows_quarantine_and_run_together(warehouse: Warehouse) -> None:
    run = IngestionRun(run_id="r1", feed="bars", started_at=T0, finished_at=T0, status="degraded", error="partial")
    quarantine = pl.DataFrame(
        {
            "feed": ["bars"],
            "payload_sha256": ["ab"],
            "payload": ['{"o": "x"}'],
            "reason": ["open: not a number"],
            "run_id": ["r1"],
            "ts_ingested": [T0],
        }
    )
    result = record_ingestion(warehouse, run, {"bars": bar_rows([1.0, 2.0])}, quarantine)
    assert (result.total_loaded, result.rows_quarantined) == (2, 1)
    record_ingestion(warehouse, run, {"bars": bar_rows([1.0, 2.0])}, quarantine)
    counts = table_row_counts(warehouse)
    assert (counts["bars"], counts["quarantine"], counts["ingestion_runs"]) == (2, 1, 1)
    latest = last_ingestions(warehouse).row(0, named=True)
    assert (latest["feed"], latest["status"], latest["rows_loaded"], latest["rows_quarantined"]) == (
        "bars",
        "degraded",
        2,
        1,
    )


def test_a_second_process_holding_the_file_is_waited_for(warehouse: Warehouse) -> None:
    holder = hold_lock(warehouse.path, 1.0)
    started = time.monotonic()
    try:
        upsert(warehouse, {"bars": bar_rows([1.0])})
    finally:
        holder.wait(timeout=10)
    assert time.monotonic() - started > 0.3  # it really waited for the other process
    assert table_row_counts(warehouse)["bars"] == 1


def test_a_memory_limit_caps_duckdbs_cache_on_every_connection(warehouse: Warehouse) -> None:
    with Warehouse(warehouse.path, memory_limit="64MB").connect() as con:
        (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchall()[0]
    with warehouse.connect() as con:  # unset: DuckDB's own default, a share of the machine's memory
        (default,) = con.execute("SELECT current_setting('memory_limit')").fetchall()[0]
    assert limit == "61.0 MiB" and default != limit  # DuckDB says 64 MB in binary units


def test_a_lock_held_past_the_deadline_is_a_clear_error(warehouse: Warehouse) -> None:
    impatient = Warehouse(warehouse.path, lock_deadline_s=0.5)
    holder = hold_lock(warehouse.path, 5.0)
    try:
        with pytest.raises(WarehouseLockedError, match=r"locked by another process \(waited 0\.\d+s\)"):
            upsert(impatient, {"bars": bar_rows([1.0])})
    finally:
        holder.kill()
        holder.wait(timeout=10)
