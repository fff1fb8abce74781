"""The analytics views (sql/schema/004_analytics.sql and 006_analytics_operations.sql) on
constructed warehouses.

`recorded` (004): two runs, "a" holding every case worked out by hand below and "b" one losing
trade, one equity point and one rejection, so any view mixing runs shows it in "a"'s numbers.
`operated` (006): runs of every mode with exposures, kill-switch events, signals over bars,
and paper and backtest runs whose cycles overlap or not, each case named where it is made.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pytest

from core.config import PROFILE_CAPS, Mode, RiskLimits, RiskProfile
from hydra.live import record_run
from hydra.settings import load_secrets, load_settings
from hydra.sources import SourceContext
from warehouse import Warehouse
from warehouse.sqlfiles import read_sql

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
SQRT_252 = math.sqrt(252)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# (run, trade, strategy, symbol, regime, status, pnl, realized_r, planned_rr)
TRADES = [
    ("a", "t1", "trend", "BTC/USD", "bull", "closed", 200.0, 2.0, 2.0),
    ("a", "t2", "trend", "SPY", "bear", "closed", -100.0, -1.0, 3.0),
    ("a", "t3", "trend", "BTC/USD", "bull", "closed", 50.0, 0.5, 2.0),
    ("a", "t4", "meanrev", "SPY", "bull", "closed", 30.0, 1.5, 1.0),
    ("a", "t5", "meanrev", "SPY", "bull", "closed", 0.0, 0.0, 1.0),  # breakeven: neither win nor loss
    ("a", "t6", "trend", "SPY", "bull", "open", None, None, 5.0),  # still open: in no metric
    ("b", "t1", "trend", "BTC/USD", "bull", "closed", -40.0, -0.4, 2.0),
]

# (run, ts, equity). Run "a" closes its UTC days at 1000, 900 and 1080; day 2 has one point.
EQUITY = [
    ("a", at(2, 14, 30), 1000.0),
    ("a", at(2, 15, 30), 1100.0),
    ("a", at(2, 23, 0), 1000.0),  # still 2 March in UTC, already 3 March in Tokyo
    ("a", at(3, 14, 30), 900.0),
    ("a", at(4, 14, 30), 1210.0),
    ("a", at(4, 20, 0), 1080.0),
    ("b", at(2, 14, 30), 500.0),
]

# (run, proposal, approved, reason codes)
DECISIONS = [
    ("a", "p1", True, ["max_position"]),  # cut, not rejected: not counted
    ("a", "p2", False, ["max_position", "max_asset"]),
    ("a", "p3", False, ["max_asset"]),
    ("a", "p4", True, []),
    ("b", "p1", False, ["kill_switch"]),
]

# (run, client order id, strategy, symbol, side, decision price)
ORDERS = [
    ("a", "o1", "trend", "BTC/USD", "buy", 100.0),
    ("a", "o2", "trend", "BTC/USD", "sell", 200.0),
    ("a", "o3", "meanrev", "SPY", "sell", 50.0),
    ("b", "o1", "trend", "BTC/USD", "buy", 10.0),
]

# (run, fill, client order id, price)
FILLS = [
    ("a", "f1", "o1", 100.5),
    ("a", "f2", "o1", 99.9),
    ("a", "f3", "o2", 199.0),
    ("a", "f4", "o3", 50.1),
    ("b", "f1", "o1", 10.0),
]


def add_trade(
    con: duckdb.DuckDBPyConnection,
    run: str,
    trade: str,
    *,
    strategy: str = "trend",
    symbol: str = "SPY",
    regime: str = "bull",
    status: str = "closed",
    pnl: float | None = None,
    realized_r: float | None = None,
    planned_rr: float = 1.0,
    exit_ts: datetime | None = None,
) -> None:
    con.execute(
        "INSERT INTO trades (run_id, trade_id, strategy, symbol, side, qty, entry_ts, entry_price, stop, target,"
        " planned_rr, regime_at_entry, exit_ts, pnl, fees, realized_r, status, ts_ingested)"
        " VALUES (?, ?, ?, ?, 'long', 1, ?, 100, 90, 120, ?, ?, ?, ?, 0, ?, ?, ?)",
        [run, trade, strategy, symbol, T0, planned_rr, regime, exit_ts, pnl, realized_r, status, T0],
    )


def add_equity(
    con: duckdb.DuckDBPyConnection, run: str, ts: datetime, equity: float, gross_exposure: float = 0.0
) -> None:
    con.execute(
        "INSERT INTO equity (run_id, ts_event, cash, positions_value, equity, gross_exposure, daily_pnl, drawdown,"
        " ts_ingested) VALUES (?, ?, ?, 0, ?, ?, 0, 0, ?)",
        [run, ts, equity, equity, gross_exposure, ts],
    )


def add_order(
    con: duckdb.DuckDBPyConnection,
    run: str,
    order: str,
    *,
    strategy: str = "trend",
    symbol: str = "SPY",
    side: str = "buy",
    decision_price: float = 100.0,
    ts: datetime = T0,
    qty: float | None = None,
) -> None:
    con.execute(
        "INSERT INTO orders (run_id, client_order_id, ts_event, strategy, symbol, side, intent, order_type,"
        " time_in_force, qty, decision_price, status, filled_qty, ts_ingested)"
        " VALUES (?, ?, ?, ?, ?, ?, 'entry', 'market', 'day', ?, ?, 'filled', 1, ?)",
        [run, order, ts, strategy, symbol, side, qty, decision_price, ts],
    )


@pytest.fixture
def recorded(warehouse: Warehouse) -> Warehouse:
    with warehouse.connect() as con:
        for run, trade, strategy, symbol, regime, status, pnl, realized_r, planned_rr in TRADES:
            add_trade(
                con,
                run,
                trade,
                strategy=strategy,
                symbol=symbol,
                regime=regime,
                status=status,
                pnl=pnl,
                realized_r=realized_r,
                planned_rr=planned_rr,
            )
        for run, ts, equity in EQUITY:
            add_equity(con, run, ts, equity)
        for run, proposal, approved, codes in DECISIONS:
            con.execute(
                "INSERT INTO risk_decisions (run_id, proposal_id, ts_event, approved, qty, notional, reasons,"
                " reason_codes, ts_ingested) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?)",
                [run, proposal, T0, approved, codes, codes, T0],
            )
        for run, order, strategy, symbol, side, decision_price in ORDERS:
            add_order(con, run, order, strategy=strategy, symbol=symbol, side=side, decision_price=decision_price)
        sides = {(run, order): side for run, order, _, _, side, _ in ORDERS}
        for run, fill, order, price in FILLS:
            con.execute(
                "INSERT INTO fills (run_id, fill_id, client_order_id, ts_event, symbol, side, qty, price, fee,"
                " ts_ingested) VALUES (?, ?, ?, ?, 'X', ?, 1, ?, 0, ?)",
                [run, fill, order, T0, sides[(run, order)], price, T0],
            )
    return warehouse


def rows(warehouse: Warehouse, view: str, order_by: str) -> list[dict[str, Any]]:
    with warehouse.connect() as con:
        # A session zone far from UTC: days must still be UTC days.
        con.execute("SET TimeZone = 'Asia/Tokyo'")
        result = con.execute(f"SELECT * FROM {view} ORDER BY {order_by}")
        names = [column[0] for column in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def assert_rows(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(found) == len(expected), found
    for row, wanted in zip(found, expected, strict=True):
        assert row.keys() == wanted.keys()
        for key, value in wanted.items():
            assert row[key] == (pytest.approx(value) if isinstance(value, float) else value), (key, row, wanted)


METRICS = (
    "trades",
    "wins",
    "win_rate",
    "avg_win",
    "avg_loss",
    "avg_realized_r",
    "avg_planned_rr",
    "expectancy",
    "profit_factor",
    "total_pnl",
)


def metrics(*values: float | None) -> dict[str, float | None]:
    return dict(zip(METRICS, values, strict=True))


# Run b's only trade: one loss of 40 (r -0.4, planned 2); gross profit 0 over gross loss 40.
B_LOSS = metrics(1, 0, 0.0, None, -40.0, -0.4, 2.0, -40.0, 0.0, -40.0)
# Run a's t1 and t3, both trend on BTC/USD in bull: wins 200 and 50.
# avg_win 250/2 = 125, avg_r (2 + 0.5)/2 = 1.25, planned (2 + 2)/2 = 2, no loss: profit factor NULL.
A_TREND_BULL_BTC = metrics(2, 2, 1.0, 125.0, None, 1.25, 2.0, 125.0, None, 250.0)
# Run a's t2 alone: a loss of 100, r -1, planned 3; gross profit 0 / gross loss 100 = 0.
A_T2 = metrics(1, 0, 0.0, None, -100.0, -1.0, 3.0, -100.0, 0.0, -100.0)
# Run a's meanrev: t4 (+30, r 1.5) and t5 (0, r 0), both planned 1.
# wins 1 of 2 (breakeven is no win), avg_win 30, no loss: avg_loss and profit factor NULL,
# avg_r (1.5 + 0)/2 = 0.75, expectancy 30/2 = 15.
A_MEANREV = metrics(2, 1, 0.5, 30.0, None, 0.75, 1.0, 15.0, None, 30.0)


def test_strategy_performance(recorded: Warehouse) -> None:
    # trend in a: t1 +200, t2 -100, t3 +50. wins 2/3; avg_win (200 + 50)/2 = 125; avg_loss -100;
    # avg_r (2 - 1 + 0.5)/3 = 0.5; planned (2 + 3 + 2)/3 = 7/3; expectancy 150/3 = 50;
    # profit factor 250/100 = 2.5; total 150. t6 is open and counts nowhere.
    trend = metrics(3, 2, 2 / 3, 125.0, -100.0, 0.5, 7 / 3, 50.0, 2.5, 150.0)
    assert_rows(
        rows(recorded, "analytics_strategy_performance", "run_id, strategy"),
        [
            {"run_id": "a", "strategy": "meanrev", **A_MEANREV},
            {"run_id": "a", "strategy": "trend", **trend},
            {"run_id": "b", "strategy": "trend", **B_LOSS},
        ],
    )


def test_regime_performance(recorded: Warehouse) -> None:
    # bull in a: t1 +200, t3 +50, t4 +30, t5 0. wins 3/4; avg_win 280/3; no loss;
    # avg_r (2 + 0.5 + 1.5 + 0)/4 = 1; planned (2 + 2 + 1 + 1)/4 = 1.5; expectancy 280/4 = 70.
    bull = metrics(4, 3, 0.75, 280 / 3, None, 1.0, 1.5, 70.0, None, 280.0)
    assert_rows(
        rows(recorded, "analytics_regime_performance", "run_id, regime_at_entry"),
        [
            {"run_id": "a", "regime_at_entry": "bear", **A_T2},
            {"run_id": "a", "regime_at_entry": "bull", **bull},
            {"run_id": "b", "regime_at_entry": "bull", **B_LOSS},
        ],
    )


def test_strategy_regime_performance(recorded: Warehouse) -> None:
    assert_rows(
        rows(recorded, "analytics_strategy_regime_performance", "run_id, strategy, regime_at_entry"),
        [
            {"run_id": "a", "strategy": "meanrev", "regime_at_entry": "bull", **A_MEANREV},
            {"run_id": "a", "strategy": "trend", "regime_at_entry": "bear", **A_T2},
            {"run_id": "a", "strategy": "trend", "regime_at_entry": "bull", **A_TREND_BULL_BTC},
            {"run_id": "b", "strategy": "trend", "regime_at_entry": "bull", **B_LOSS},
        ],
    )


def test_asset_performance(recorded: Warehouse) -> None:
    # SPY in a: t2 -100 (r -1, planned 3), t4 +30 (r 1.5, planned 1), t5 0 (r 0, planned 1).
    # wins 1/3; avg_r 0.5/3 = 1/6; planned 5/3; expectancy -70/3; profit factor 30/100 = 0.3.
    spy = metrics(3, 1, 1 / 3, 30.0, -100.0, 1 / 6, 5 / 3, -70 / 3, 0.3, -70.0)
    assert_rows(
        rows(recorded, "analytics_asset_performance", "run_id, symbol"),
        [
            {"run_id": "a", "symbol": "BTC/USD", **A_TREND_BULL_BTC},
            {"run_id": "a", "symbol": "SPY", **spy},
            {"run_id": "b", "symbol": "BTC/USD", **B_LOSS},
        ],
    )


def test_equity_curve_and_max_drawdown(recorded: Warehouse) -> None:
    # Peaks run 1000, 1100, 1100, 1100, 1210, 1210. Drawdowns: 1 - 1000/1100 = 1/11,
    # 1 - 900/1100 = 2/11, 1 - 1080/1210 = 130/1210 = 13/121. The deepest is 2/11.
    expected_a = [
        (at(2, 14, 30), 1000.0, 1000.0, 0.0),
        (at(2, 15, 30), 1100.0, 1100.0, 0.0),
        (at(2, 23, 0), 1000.0, 1100.0, 1 / 11),
        (at(3, 14, 30), 900.0, 1100.0, 2 / 11),
        (at(4, 14, 30), 1210.0, 1210.0, 0.0),
        (at(4, 20, 0), 1080.0, 1210.0, 13 / 121),
    ]
    expected = [
        {"run_id": "a", "ts_event": ts, "equity": equity, "peak_equity": peak, "drawdown": drawdown}
        for ts, equity, peak, drawdown in expected_a
    ]
    expected.append({"run_id": "b", "ts_event": at(2, 14, 30), "equity": 500.0, "peak_equity": 500.0, "drawdown": 0.0})
    assert_rows(rows(recorded, "analytics_equity_curve", "run_id, ts_event"), expected)
    assert_rows(
        rows(recorded, "analytics_run_risk", "run_id"),
        [
            {"run_id": "a", "peak_equity": 1210.0, "max_drawdown": 2 / 11},
            {"run_id": "b", "peak_equity": 500.0, "max_drawdown": 0.0},
        ],
    )


def test_daily_returns_are_per_utc_day_against_the_previous_close(recorded: Warehouse) -> None:
    # a closes 1000 (2 March, 23:00 UTC is its last point), 900, 1080: returns -10%, then
    # 1080/900 - 1 = +20%. The first day of each run has no previous close.
    assert_rows(
        rows(recorded, "analytics_daily_returns", "run_id, day"),
        [
            {"run_id": "a", "day": date(2026, 3, 2), "close_equity": 1000.0, "points": 3, "daily_return": None},
            {"run_id": "a", "day": date(2026, 3, 3), "close_equity": 900.0, "points": 1, "daily_return": -0.1},
            {"run_id": "a", "day": date(2026, 3, 4), "close_equity": 1080.0, "points": 2, "daily_return": 0.2},
            {"run_id": "b", "day": date(2026, 3, 2), "close_equity": 500.0, "points": 1, "daily_return": None},
        ],
    )


def test_run_ratios(recorded: Warehouse) -> None:
    # a's returns -0.1 and 0.2: mean 0.05; sample variance ((-0.15)^2 + 0.15^2)/(2 - 1) = 0.045;
    # downside deviation sqrt(((-0.1)^2 + 0^2)/2) = sqrt(0.005).
    # Annualised return: 1080/1000 over 2 daily returns, 1.08^(252/2) - 1; max drawdown 2/11.
    annualised = 1.08 ** (252 / 2) - 1
    a = {
        "run_id": "a",
        "days": 3,
        "returns": 2,
        "mean_daily_return": 0.05,
        "stdev_daily_return": math.sqrt(0.045),
        "downside_deviation": math.sqrt(0.005),
        "sharpe": 0.05 / math.sqrt(0.045) * SQRT_252,
        "sortino": 0.05 / math.sqrt(0.005) * SQRT_252,
        "annualised_return": annualised,
        "max_drawdown": 2 / 11,
        "calmar": annualised / (2 / 11),
    }
    # b has one equity point: one day, no return, so every ratio is undefined.
    b = {
        "run_id": "b",
        "days": 1,
        "returns": 0,
        "mean_daily_return": None,
        "stdev_daily_return": None,
        "downside_deviation": None,
        "sharpe": None,
        "sortino": None,
        "annualised_return": None,
        "max_drawdown": 0.0,
        "calmar": None,
    }
    assert_rows(rows(recorded, "analytics_run_ratios", "run_id"), [a, b])


def test_risk_rejections_count_each_reason_code_of_rejected_decisions(recorded: Warehouse) -> None:
    # a rejected p2 (max_position, max_asset) and p3 (max_asset); p1's max_position only cut it.
    assert rows(recorded, "analytics_risk_rejections", "run_id, code") == [
        {"run_id": "a", "code": "max_asset", "rejections": 2},
        {"run_id": "a", "code": "max_position", "rejections": 1},
        {"run_id": "b", "code": "kill_switch", "rejections": 1},
    ]


def test_slippage_is_positive_when_the_fill_is_worse_for_us(recorded: Warehouse) -> None:
    # f1 buys at 100.5 against 100: +0.5/100 = +50 bps; f2 buys at 99.9: -10 bps (better);
    # f3 sells at 199 against 200: received 1/200 less = +50 bps; f4 sells at 50.1 against 50:
    # received 0.1/50 more = -20 bps; b's f1 fills at its decision price: 0.
    found = rows(recorded, "analytics_slippage", "run_id, fill_id")
    assert [(r["run_id"], r["fill_id"], r["client_order_id"], r["side"]) for r in found] == [
        ("a", "f1", "o1", "buy"),
        ("a", "f2", "o1", "buy"),
        ("a", "f3", "o2", "sell"),
        ("a", "f4", "o3", "sell"),
        ("b", "f1", "o1", "buy"),
    ]
    assert [r["slippage_bps"] for r in found] == pytest.approx([50.0, -10.0, 50.0, -20.0, 0.0])
    assert [(r["decision_price"], r["fill_price"]) for r in found] == [
        (100.0, 100.5),
        (100.0, 99.9),
        (200.0, 199.0),
        (50.0, 50.1),
        (10.0, 10.0),
    ]


def test_every_view_names_its_run(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        found = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name")
        views = [row[0] for row in found.fetchall()]
        assert views == [
            "analytics_asset_performance",
            "analytics_backtest_vs_paper",
            "analytics_broker_refusals",
            "analytics_closed_trades",
            "analytics_daily_returns",
            "analytics_equity_curve",
            "analytics_exposure",
            "analytics_kill_switch_history",
            "analytics_performance",
            "analytics_regime_performance",
            "analytics_risk_rejections",
            "analytics_run_ratios",
            "analytics_run_risk",
            "analytics_signal_hit_rate",
            "analytics_slippage",
            "analytics_strategy_performance",
            "analytics_strategy_regime_performance",
        ]
        for view in views:
            columns = {column[0] for column in con.execute(f"DESCRIBE {view}").fetchall()}
            # The comparison of two runs names both.
            assert "run_id" in columns or {"paper_run_id", "backtest_run_id"} <= columns, view


# The operational views (sql/schema/006_analytics_operations.sql), on their own warehouse.
MODERATE = PROFILE_CAPS[RiskProfile.MODERATE]  # max_total_exposure 0.25

# (run, mode, limits): "old" was recorded before runs had limits.
RUNS = [
    ("a", "sim", MODERATE.model_dump_json()),
    ("b", "sim", MODERATE.model_dump_json()),
    ("old", "sim", None),
    ("p", "paper", MODERATE.model_dump_json()),
    ("p2", "paper", MODERATE.model_dump_json()),
    ("bt", "backtest", MODERATE.model_dump_json()),
    ("bt2", "backtest", MODERATE.model_dump_json()),
    ("s", "sim", MODERATE.model_dump_json()),
]

# (run, ts, equity, gross exposure)
EXPOSURES = [
    ("a", at(2, 15), 1000.0, 200.0),
    ("a", at(2, 16), 1000.0, 250.0),  # exactly at the limit: no breach
    ("a", at(2, 17), 800.0, 240.0),
    ("old", at(2, 15), 500.0, 100.0),
]

# (run, ts, event, reason, equity, until)
KILL_SWITCH = [
    ("a", at(2, 15), "HALTED", "daily loss", 950.0, None),
    ("a", at(3, 0), "RESUMED", "new trading day", 950.0, None),
    ("a", at(3, 10), "COOLDOWN_STARTED", "3 losses", 940.0, at(3, 14)),
    ("a", at(3, 14), "COOLDOWN_ENDED", "cooldown over", None, at(3, 14)),
    ("a", at(3, 16), "COOLDOWN_STARTED", "3 losses", 930.0, at(3, 20)),  # still on
    # b's cooldown ends after a's second one started and after b's own halt: neither may take it.
    ("b", at(3, 18), "COOLDOWN_STARTED", "3 losses", 500.0, at(3, 22)),
    ("b", at(3, 19), "HALTED", "daily loss", 480.0, None),  # still on
    ("b", at(3, 22), "COOLDOWN_ENDED", "cooldown over", None, at(3, 22)),
]

# 1Min bars, (symbol, open time, close): each closes a minute after it opens.
BARS = [
    ("X", at(2, 14, 58), 100.0),
    ("X", at(2, 14, 59), 101.0),  # closes 15:00: the start price of a 15:00 signal
    ("X", at(2, 15, 0), 500.0),  # closes 15:01: unknown to a 15:00 signal
    ("X", at(2, 15, 14), 103.0),  # closes 15:15
    ("X", at(2, 15, 15), 90.0),  # closes 15:16: past a 15:00 signal's 15-minute horizon
    ("X", at(2, 15, 59), 99.0),  # closes 16:00
    ("X", at(2, 18, 59), 101.0),  # closes 19:00: X's last close
    ("Y", at(2, 14, 59), 50.0),
    ("Y", at(2, 15, 14), 40.0),  # closes 15:15: Y's last close
]

# (run, signal, strategy, symbol, ts, score)
SIGNALS = [
    ("a", "s1", "trend", "X", at(2, 15), 0.5),
    ("a", "s2", "trend", "X", at(2, 15), -0.5),
    ("a", "s3", "trend", "X", at(2, 15), 0.0),
    ("a", "s4", "meanrev", "X", at(2, 18), 1.0),
    ("a", "s5", "meanrev", "X", at(2, 14), 1.0),  # before any close: no start price
    ("b", "s1", "trend", "X", at(2, 15), 1.0),
    ("b", "s2", "trend", "Y", at(2, 15), 1.0),
]

# (run, first cycle, last cycle): cycles every minute in between.
CYCLES = [
    ("p", at(2, 15, 0), at(2, 15, 3)),
    ("bt", at(2, 15, 2), at(2, 15, 5)),  # overlaps p on 15:02 .. 15:03
    ("p2", at(2, 16, 0), at(2, 16, 1)),
    ("bt2", at(2, 16, 0), at(2, 16, 1)),  # overlaps p2 only
    ("s", at(2, 15, 0), at(2, 15, 5)),  # a sim run: compared with nothing
]

# (run, client order id, ts, side, qty)
PAIRED_ORDERS = [
    ("p", "o1", at(2, 15, 1), "buy", 1.0),  # before the overlap
    ("p", "o2", at(2, 15, 2), "buy", 2.0),
    ("p", "o3", at(2, 15, 2), "sell", 1.0),
    ("p", "o4", at(2, 15, 3), "buy", 1.0),
    ("p", "o7", at(2, 15, 3), "buy", 0.3),
    ("bt", "o2", at(2, 15, 2), "buy", 2.0),  # matches
    ("bt", "o3", at(2, 15, 2), "buy", 1.0),  # other side
    ("bt", "o4", at(2, 15, 3), "buy", 1.5),  # other quantity
    ("bt", "o5", at(2, 15, 3), "sell", 3.0),  # backtest only
    ("bt", "o6", at(2, 15, 4), "buy", 1.0),  # after the overlap
    ("bt", "o7", at(2, 15, 3), "buy", 0.1 + 0.2),  # 0.30000000000000004: matches within 1e-9
    ("s", "o2", at(2, 15, 2), "buy", 2.0),
]

# (run, trade, status, pnl, exit)
PAIRED_TRADES = [
    ("p", "t1", "closed", 10.0, at(2, 15, 2)),
    ("p", "t2", "closed", 100.0, at(2, 15, 10)),  # closed after the overlap
    ("p", "t3", "open", None, None),
    ("bt", "t1", "closed", 12.0, at(2, 15, 3)),
    ("bt", "t2", "closed", -5.0, at(2, 15, 1)),  # closed before it
]


@pytest.fixture
def operated(warehouse: Warehouse) -> Warehouse:
    with warehouse.connect() as con:
        for run, mode, limits in RUNS:
            con.execute(
                read_sql("record/run"),
                {
                    "run_id": run,
                    "mode": mode,
                    "parent_run_id": None,
                    "label": run,
                    "profile": "moderate",
                    "config": "{}",
                    "limits": limits,
                    "window_start": None,
                    "window_end": None,
                    "started_at": T0,
                    "ended_at": None,
                    "status": "running",
                },
            )
        for run, ts, equity, gross in EXPOSURES:
            add_equity(con, run, ts, equity, gross)
        for run, ts, event, reason, equity, until in KILL_SWITCH:
            con.execute(
                "INSERT INTO kill_switch_events (run_id, ts_event, event, reason, equity, until_ts, ts_ingested)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run, ts, event, reason, equity, until, ts],
            )
        for symbol, ts, close in BARS:
            con.execute(
                "INSERT INTO bars (symbol, timeframe, ts_event, open, high, low, close, volume, source, ts_ingested)"
                " VALUES (?, '1Min', ?, ?, ?, ?, ?, 1, 'test', ?)",
                [symbol, ts, close, close, close, close, ts],
            )
        # A daily bar that would be X's newest close before 18:00 if timeframes mixed.
        con.execute(
            "INSERT INTO bars (symbol, timeframe, ts_event, open, high, low, close, volume, source, ts_ingested)"
            " VALUES ('X', '1Day', ?, 1000, 1000, 1000, 1000, 1, 'test', ?)",
            [at(2, 16, 30), at(2, 16, 30)],
        )
        for run, signal, strategy, symbol, ts, score in SIGNALS:
            con.execute(
                "INSERT INTO signals (run_id, signal_id, ts_event, strategy, symbol, score, confidence, reliability,"
                " weight, source, signal_ts, half_life_s, ts_ingested) VALUES (?, ?, ?, ?, ?, ?, 1, 1, 1, 'test', ?,"
                " 60, ?)",
                [run, signal, ts, strategy, symbol, score, ts, ts],
            )
        for run, first, last in CYCLES:
            con.execute(
                "INSERT INTO cycles (run_id, ts_event, cycle_no, regime, regime_confidence, observation_only,"
                " trading_state, n_signals, n_proposals, n_approved, n_orders, ts_ingested)"
                " SELECT ?, ts, row_number() OVER (ORDER BY ts), 'bull', 1, false, 'ACTIVE', 0, 0, 0, 0, ts"
                " FROM unnest(generate_series(?::TIMESTAMPTZ, ?::TIMESTAMPTZ, INTERVAL 1 MINUTE)) t(ts)",
                [run, first, last],
            )
        for run, order, ts, side, qty in PAIRED_ORDERS:
            add_order(con, run, order, side=side, ts=ts, qty=qty)
        for run, trade, status, pnl, exit_ts in PAIRED_TRADES:
            add_trade(con, run, trade, status=status, pnl=pnl, exit_ts=exit_ts)
    return warehouse


def test_exposure_against_the_recorded_limit(operated: Warehouse) -> None:
    # a's limit is 0.25 of equity. 200/1000 = 0.2, 0.2/0.25 = 0.8; 250/1000 = 0.25, exactly
    # the limit: utilisation 1, no breach; 240/800 = 0.3 > 0.25, 0.3/0.25 = 1.2: a breach.
    # "old" has no recorded limits: 100/500 = 0.2 against an unknown limit.
    expected = [
        ("a", at(2, 15), 1000.0, 200.0, 0.2, 0.25, 0.8, False),
        ("a", at(2, 16), 1000.0, 250.0, 0.25, 0.25, 1.0, False),
        ("a", at(2, 17), 800.0, 240.0, 0.3, 0.25, 1.2, True),
        ("old", at(2, 15), 500.0, 100.0, 0.2, None, None, None),
    ]
    names = ("run_id", "ts_event", "equity", "gross_exposure", "exposure", "max_total_exposure", "utilisation")
    assert_rows(
        rows(operated, "analytics_exposure", "run_id, ts_event"),
        [{**dict(zip(names, row[:-1], strict=True)), "breach": row[-1]} for row in expected],
    )


def test_record_run_records_the_effective_limits(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    # An override tightens the moderate profile's 0.25 to 0.2; every other limit stays the cap.
    monkeypatch.setenv("HYDRA_ENGINE__RISK__MAX_TOTAL_EXPOSURE", "0.2")
    context = SourceContext(settings=load_settings(), secrets=load_secrets(), warehouse=warehouse)
    record_run(context, "r", Mode.PAPER, "paper session", status="running")
    with warehouse.connect() as con:
        add_equity(con, "r", T0, 1000.0, 210.0)
        (limits,) = con.execute("SELECT limits FROM runs WHERE run_id = 'r'").fetchone() or (None,)
    assert RiskLimits.model_validate_json(limits) == MODERATE.model_copy(update={"max_total_exposure": 0.2})
    # 210/1000 = 0.21 is within the profile's 0.25 but over the run's 0.2: 0.21/0.2 = 1.05.
    (row,) = rows(warehouse, "analytics_exposure", "ts_event")
    assert (row["max_total_exposure"], row["utilisation"], row["breach"]) == (0.2, pytest.approx(1.05), True)


def test_kill_switch_history_pairs_each_start_with_its_own_end(operated: Warehouse) -> None:
    # a: halted 2 March 15:00, resumed at midnight: 9 hours. Cooldown 10:00 to 14:00: 4 hours.
    # The 16:00 cooldown is still on: b's 22:00 COOLDOWN_ENDED is another run's.
    # b: cooldown 18:00 to 22:00: 4 hours; the 19:00 halt is still on, the later
    # COOLDOWN_ENDED being the end of another kind.
    hours = timedelta(hours=1)
    expected = [
        ("a", "HALTED", at(2, 15), "daily loss", 950.0, None, at(3, 0), 9 * hours),
        ("a", "COOLDOWN_STARTED", at(3, 10), "3 losses", 940.0, at(3, 14), at(3, 14), 4 * hours),
        ("a", "COOLDOWN_STARTED", at(3, 16), "3 losses", 930.0, at(3, 20), None, None),
        ("b", "COOLDOWN_STARTED", at(3, 18), "3 losses", 500.0, at(3, 22), at(3, 22), 4 * hours),
        ("b", "HALTED", at(3, 19), "daily loss", 480.0, None, None, None),
    ]
    names = ("run_id", "kind", "started_at", "reason", "equity", "planned_until", "ended_at", "duration")
    assert_rows(
        rows(operated, "analytics_kill_switch_history", "run_id, started_at"),
        [dict(zip(names, row, strict=True)) for row in expected],
    )


def test_signal_hit_rate_per_horizon(operated: Warehouse) -> None:
    # X closes 101 at 15:00 (the 15:01 close of 500 is after the signal), 103 by 15:15,
    # 99 by 16:00 and 101 by 19:00, its last close.
    # a's trend signals at 15:00, against 101: up to 103 at 15 minutes, down to 99 at 60, flat
    # at 240 (101 by 19:00). s1 (+) hits at 15, s2 (-) at 60, s3 (0) never: 1 of 3, 1 of 3, 0 of 3.
    # a's meanrev s4 at 18:00 starts from 99 (16:00; the daily bar is no 1Min close). By 18:15
    # the last close is still 16:00's: nothing moved, not counted. By 19:00, 101: up, a hit.
    # By 22:00 the bars end at 19:00: the horizon is not over, not counted. s5 has no start.
    # b's trend: X (+) as s1: hit, miss, miss. Y (+) falls 50 to 40 by 15:15: a miss; Y's bars
    # end at 15:15, so its 60 and 240 minute horizons are not over, whatever X's bars reach.
    expected = [
        ("a", "meanrev", 60, 1, 1, 1.0),
        ("a", "trend", 15, 3, 1, 1 / 3),
        ("a", "trend", 60, 3, 1, 1 / 3),
        ("a", "trend", 240, 3, 0, 0.0),
        ("b", "trend", 15, 2, 1, 0.5),
        ("b", "trend", 60, 1, 0, 0.0),
        ("b", "trend", 240, 1, 0, 0.0),
    ]
    names = ("run_id", "strategy", "horizon_minutes", "signals", "hits", "hit_rate")
    assert_rows(
        rows(operated, "analytics_signal_hit_rate", "run_id, strategy, horizon_minutes"),
        [dict(zip(names, row, strict=True)) for row in expected],
    )


def test_backtest_vs_paper_over_the_overlap_of_their_cycles(operated: Warehouse) -> None:
    # p (15:00-15:03) and bt (15:02-15:05) overlap on 15:02-15:03. p decided o2, o3, o4, o7 in
    # it (o1 is before): 4; bt o2, o3, o4, o5, o7 (o6 is after): 5. o2 and o7 match; o3 differs
    # in side, o4 in quantity, o5 is bt's alone: 2 of max(4, 5) = 0.4. Closed in the overlap:
    # p's t1 (+10; t2 closed after), bt's t1 (+12; t2 closed before).
    # p2 and bt2 overlap on 16:00-16:01 with nothing decided: no rate, no pnl. p with bt2 and
    # p2 with bt never overlap; the sim run s pairs with nothing.
    expected = [
        ("p", "bt", at(2, 15, 2), at(2, 15, 3), 4, 5, 2, 0.4, 10.0, 12.0),
        ("p2", "bt2", at(2, 16, 0), at(2, 16, 1), 0, 0, 0, None, 0.0, 0.0),
    ]
    names = (
        "paper_run_id",
        "backtest_run_id",
        "overlap_start",
        "overlap_end",
        "paper_orders",
        "backtest_orders",
        "matching_orders",
        "match_rate",
        "paper_pnl",
        "backtest_pnl",
    )
    assert_rows(
        rows(operated, "analytics_backtest_vs_paper", "paper_run_id, backtest_run_id"),
        [dict(zip(names, row, strict=True)) for row in expected],
    )
