"""The analytics views (sql/schema/004_analytics.sql) on a constructed warehouse.

Two runs: "a" holds every case worked out by hand below; "b" holds one losing trade, one
equity point and one rejection, so any view mixing runs shows it in "a"'s numbers.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest

from warehouse import Warehouse

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

# (run, proposal, approved, reasons)
DECISIONS = [
    ("a", "p1", True, ["max_position"]),  # cut, not rejected: not counted
    ("a", "p2", False, ["max_position", "daily_loss"]),
    ("a", "p3", False, ["daily_loss"]),
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


@pytest.fixture
def recorded(warehouse: Warehouse) -> Warehouse:
    with warehouse.connect() as con:
        for run, trade, strategy, symbol, regime, status, pnl, realized_r, planned_rr in TRADES:
            con.execute(
                "INSERT INTO trades (run_id, trade_id, strategy, symbol, side, qty, entry_ts, entry_price, stop,"
                " target, planned_rr, regime_at_entry, pnl, fees, realized_r, status, ts_ingested)"
                " VALUES (?, ?, ?, ?, 'long', 1, ?, 100, 90, 120, ?, ?, ?, 0, ?, ?, ?)",
                [run, trade, strategy, symbol, T0, planned_rr, regime, pnl, realized_r, status, T0],
            )
        for run, ts, equity in EQUITY:
            con.execute(
                "INSERT INTO equity (run_id, ts_event, cash, positions_value, equity, gross_exposure, daily_pnl,"
                " drawdown, ts_ingested) VALUES (?, ?, ?, 0, ?, 0, 0, 0, ?)",
                [run, ts, equity, equity, ts],
            )
        for run, proposal, approved, reasons in DECISIONS:
            con.execute(
                "INSERT INTO risk_decisions (run_id, proposal_id, ts_event, approved, qty, notional, reasons,"
                " ts_ingested) VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
                [run, proposal, T0, approved, reasons, T0],
            )
        for run, order, strategy, symbol, side, decision_price in ORDERS:
            con.execute(
                "INSERT INTO orders (run_id, client_order_id, ts_event, strategy, symbol, side, intent, order_type,"
                " time_in_force, decision_price, status, filled_qty, ts_ingested)"
                " VALUES (?, ?, ?, ?, ?, ?, 'entry', 'market', 'day', ?, 'filled', 1, ?)",
                [run, order, T0, strategy, symbol, side, decision_price, T0],
            )
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


def test_risk_rejections_count_each_reason_of_rejected_decisions(recorded: Warehouse) -> None:
    # a rejected p2 (max_position, daily_loss) and p3 (daily_loss); p1's max_position only cut it.
    assert rows(recorded, "analytics_risk_rejections", "run_id, reason") == [
        {"run_id": "a", "reason": "daily_loss", "rejections": 2},
        {"run_id": "a", "reason": "max_position", "rejections": 1},
        {"run_id": "b", "reason": "kill_switch", "rejections": 1},
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
            "analytics_closed_trades",
            "analytics_daily_returns",
            "analytics_equity_curve",
            "analytics_performance",
            "analytics_regime_performance",
            "analytics_risk_rejections",
            "analytics_run_ratios",
            "analytics_run_risk",
            "analytics_slippage",
            "analytics_strategy_performance",
            "analytics_strategy_regime_performance",
        ]
        for view in views:
            columns = [column[0] for column in con.execute(f"DESCRIBE {view}").fetchall()]
            assert "run_id" in columns, view
