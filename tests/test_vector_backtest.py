"""backtest.vector replays a signal strategy as SimBroker fills: decided on a close, filled at the next open."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from backtest.vector import VectorConfig, VectorResult, run_vector
from bench import peers
from core.features import rolling_sum
from strategies.sma_crossover import SmaCrossover, crossover_sides

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Above:
    """Long after every close above `level`: a rule simple enough to work out by hand."""

    level: float
    name: ClassVar[str] = "above"
    warmup: ClassVar[int] = 0

    def targets(self, close: NDArray[np.float64], start: int, held: bool) -> NDArray[np.bool_]:
        return close[start:] > self.level


def bars(symbol: str, opens: Sequence[float], closes: Sequence[float], first: datetime = T0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(closes),
            "ts_event": [first + i * MINUTE for i in range(len(closes))],
            "open": [float(value) for value in opens],
            "high": [max(o, c) for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) for o, c in zip(opens, closes, strict=True)],
            "close": [float(value) for value in closes],
            "volume": [100.0] * len(closes),
        },
        schema={
            "symbol": pl.String,
            "ts_event": pl.Datetime("us", "UTC"),
            **{name: pl.Float64 for name in ("open", "high", "low", "close", "volume")},
        },
    )


def trade_rows(result: VectorResult) -> list[tuple[str, datetime, float, datetime, float, float, float]]:
    return [
        (row["symbol"], row["entry_ts"], row["entry_price"], row["exit_ts"], row["exit_price"], row["fees"], row["pnl"])
        for row in result.trades.iter_rows(named=True)
    ]


# Closes above 11 on bars 1, 3 and 4: long through bars 2, 4 and 5 (decided on a close, held from the next open).
OPENS = [10.0, 11.0, 12.5, 9.5, 13.5, 14.5]
CLOSES = [10.5, 12.0, 9.0, 13.0, 14.0, 15.0]


def test_entries_and_exits_fill_at_the_next_open() -> None:
    result = run_vector(bars("SPY", OPENS, CLOSES), Above(11.0), VectorConfig(qty=2.0, starting_cash=1_000.0))
    # Bought at bar 2's open (12.5), sold at bar 3's (9.5); bought again at bar 4's (13.5), still held.
    assert trade_rows(result) == [("SPY", T0 + 2 * MINUTE, 12.5, T0 + 3 * MINUTE, 9.5, 0.0, -6.0)]
    held = result.open_positions.row(0, named=True)
    assert (held["symbol"], held["entry_ts"], held["entry_price"], held["qty"]) == ("SPY", T0 + 4 * MINUTE, 13.5, 2.0)
    assert held["mark"] == 15.0 and held["unrealized_pnl"] == pytest.approx(3.0)
    # Cash after each bar's fills, plus the position at its close.
    expected = [1000, 1000, 1000 - 25 + 18, 994, 994 - 27 + 28, 994 - 27 + 30]
    assert result.equity.get_column("equity").to_list() == pytest.approx(expected)
    assert result.equity.get_column("ts_event").to_list() == [T0 + i * MINUTE for i in range(6)]
    assert result.final_equity == pytest.approx(997.0) and result.bars == 6


def test_slippage_moves_fills_against_the_order_and_fees_are_charged_on_notional() -> None:
    config = VectorConfig(qty=2.0, starting_cash=1_000.0, slippage_bps=100.0, fee_bps=10.0)
    result = run_vector(bars("SPY", OPENS, CLOSES), Above(11.0), config)
    buy, sell = 12.5 * 1.01, 9.5 * 0.99
    fees = 0.001 * 2 * (buy + sell)
    [(_, _, entry, _, exit_, charged, pnl)] = trade_rows(result)
    assert (entry, exit_) == pytest.approx((buy, sell)) and charged == pytest.approx(fees)
    assert pnl == pytest.approx(2 * (sell - buy) - fees)
    rebuy = 13.5 * 1.01
    unrealized = 2 * (15 - rebuy) - 0.001 * 2 * rebuy
    assert result.open_positions.row(0, named=True)["unrealized_pnl"] == pytest.approx(unrealized)
    assert result.final_equity == pytest.approx(1_000 + pnl + unrealized)


def test_a_crossover_on_the_last_bar_does_not_trade() -> None:
    closes = [5.0, 4.0, 3.0, 2.0, 3.0, 4.0]  # SMA(2) crosses above SMA(3) on the last close only
    strategy = SmaCrossover(2, 3)
    assert strategy.targets(np.array(closes), 0, False).tolist() == [False] * 5 + [True]
    result = run_vector(bars("SPY", closes, closes), strategy)
    assert result.trades.is_empty() and result.open_positions.is_empty()
    assert result.equity.get_column("equity").to_list() == [100_000.0] * 6 and result.final_equity == 100_000.0


def test_the_crossover_enters_on_a_cross_not_on_a_fast_average_already_above() -> None:
    rising_then_falling_then_rising = [1.0, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3, 4, 5, 6]
    strategy = SmaCrossover(2, 3)
    targets = strategy.targets(np.array(rising_then_falling_then_rising), 0, False)
    # Above from the start (no entry), below from close 6, above again from close 10.
    assert targets.tolist() == [False] * 10 + [True] * 4


def test_a_flat_stretch_is_a_tie_not_a_cross_on_rounding_residue() -> None:
    walk = 100 * np.exp(np.cumsum(np.random.default_rng(12).normal(0, 0.01, 2_000)))
    closes = np.concatenate((walk, np.full(300, walk[-1])))
    flat = slice(2_000 + 49, None)  # where the slow window holds equal closes only
    residue = rolling_sum(closes, 20) / 20 - rolling_sum(closes, 50) / 50
    assert (residue[flat] > 0).any() and (residue[flat] < 0).any()  # what the cumulative sums leave behind
    assert (crossover_sides(closes, 20, 50)[flat] == 0).all()
    targets = SmaCrossover(20, 50).targets(closes, 0, False)
    assert (targets[flat] == targets[2_048]).all()


def test_empty_input_replays_nothing() -> None:
    result = run_vector(bars("SPY", [], []), SmaCrossover(), VectorConfig(starting_cash=500.0))
    assert result.trades.is_empty() and result.open_positions.is_empty() and result.equity.is_empty()
    assert result.final_equity == 500.0 and result.bars == 0
    assert run_vector([], SmaCrossover()).final_equity == 100_000.0


def random_walk(seed: int, count: int) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, count)))
    opens = np.concatenate(([100.0], closes[:-1])) * np.exp(rng.normal(0, 0.0005, count))
    return opens.tolist(), closes.tolist()


def test_symbols_trade_independently_out_of_one_account() -> None:
    config = VectorConfig(qty=3.0, slippage_bps=2.0, fee_bps=1.0)
    strategy = SmaCrossover(5, 12)
    spy = bars("SPY", *random_walk(1, 400))
    qqq = bars("QQQ", *random_walk(2, 300), first=T0 + 50 * MINUTE)  # other times: the curve is on their union
    alone = {symbol: run_vector(frame, strategy, config) for symbol, frame in (("SPY", spy), ("QQQ", qqq))}
    # Interleaved and unsorted: the engine sorts it.
    together = run_vector(pl.concat([spy, qqq]).sample(fraction=1.0, shuffle=True, seed=7), strategy, config)
    for symbol, result in alone.items():
        assert together.trades.filter(pl.col("symbol") == symbol).equals(result.trades)
        assert together.open_positions.filter(pl.col("symbol") == symbol).equals(result.open_positions)
    profit = sum(result.final_equity - config.starting_cash for result in alone.values())
    assert together.final_equity == pytest.approx(config.starting_cash + profit, abs=1e-9)
    curve = together.equity
    assert curve.height == 400 and curve.get_column("ts_event").is_sorted()
    assert curve.get_column("equity").item(-1) == pytest.approx(together.final_equity, abs=1e-9)
    # Before QQQ's first bar the account is SPY's alone.
    early = curve.filter(pl.col("ts_event") < T0 + 50 * MINUTE).get_column("equity")
    assert early.to_list() == pytest.approx(alone["SPY"].equity.get_column("equity").head(50).to_list())


def test_symbols_on_one_clock_sum_to_the_same_account() -> None:
    strategy = SmaCrossover(5, 12)
    frames = [bars(symbol, *random_walk(seed, 300)) for seed, symbol in enumerate(("A", "B", "C"))]
    together = run_vector(pl.concat(frames), strategy)
    separate = [run_vector(frame, strategy).equity.get_column("equity").to_numpy() - 100_000 for frame in frames]
    np.testing.assert_allclose(together.equity.get_column("equity").to_numpy(), 100_000 + sum(separate), atol=1e-9)


def test_chunks_of_any_size_or_time_chunks_replay_the_same() -> None:
    frame = pl.concat([bars("SPY", *random_walk(3, 2_000)), bars("QQQ", *random_walk(4, 2_000))])
    strategy = SmaCrossover(20, 50)
    whole = run_vector(frame, strategy, VectorConfig(fee_bps=1.0))
    assert whole.trades.height > 20
    cut = T0 + 777 * MINUTE
    months = (frame.filter(pl.col("ts_event") < cut), frame.filter(pl.col("ts_event") >= cut))
    for result in (
        run_vector(frame, strategy, VectorConfig(fee_bps=1.0, chunk_bars=37)),
        run_vector(frame, strategy, VectorConfig(fee_bps=1.0, chunk_bars=1)),
        run_vector(iter(months), strategy, VectorConfig(fee_bps=1.0)),
    ):
        assert result.trades.equals(whole.trades) and result.open_positions.equals(whole.open_positions)
        assert result.final_equity == pytest.approx(whole.final_equity, abs=1e-9)
        np.testing.assert_allclose(result.equity.get_column("equity"), whole.equity.get_column("equity"), atol=1e-8)


def test_bad_input_is_refused() -> None:
    frame = bars("SPY", [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="share a ts_event"):
        run_vector(pl.concat([frame, frame]), SmaCrossover())
    with pytest.raises(ValueError, match="missing or NaN"):
        run_vector(frame.with_columns(pl.lit(float("nan")).alias("open")), SmaCrossover())
    with pytest.raises(ValueError, match="follow each other in time"):
        run_vector([frame, frame], SmaCrossover())
    with pytest.raises(ValueError, match="fast < slow"):
        SmaCrossover(50, 20)


# --- the vectorised engine against a loop, bar by bar --------------------------------------------


def loop_reference(
    opens: Sequence[float], closes: Sequence[float], strategy: SmaCrossover, config: VectorConfig
) -> tuple[list[tuple[int, float, int, float, float]], list[float], float]:
    """The same replay as a plain loop: fill the standing target at the open, mark at the close, then decide."""
    slip, fee_rate, qty = config.slippage_bps * 1e-4, config.fee_bps * 1e-4, config.qty
    cash, holding, target, last_side = config.starting_cash, False, False, 0
    entry: tuple[int, float, float] | None = None
    trades, curve = [], []
    for t, (open_, close) in enumerate(zip(opens, closes, strict=True)):
        if target and not holding:
            price = open_ * (1 + slip)
            fee = fee_rate * qty * price
            cash -= qty * price + fee
            entry, holding = (t, price, fee), True
        elif holding and not target and entry is not None:
            price = open_ * (1 - slip)
            fee = fee_rate * qty * price
            cash += qty * price - fee
            trades.append((entry[0], entry[1], t, price, entry[2] + fee))
            entry, holding = None, False
        curve.append(cash + (qty * close if holding else 0.0))
        if t >= strategy.slow - 1:
            fast = math.fsum(closes[t - strategy.fast + 1 : t + 1]) / strategy.fast
            slow = math.fsum(closes[t - strategy.slow + 1 : t + 1]) / strategy.slow
            side = (fast > slow) - (fast < slow)
            if side and last_side and side != last_side:
                target = side > 0
            last_side = side or last_side
    return trades, curve, curve[-1] if curve else config.starting_cash


# Quarter-unit prices: every window sum is exact in floating point, so the loop's exact sums and
# the engine's cumulative sums agree to the last bit, ties included.
price = st.integers(min_value=4, max_value=80).map(lambda quarters: quarters / 4)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    closes=st.lists(price, max_size=120),
    windows=st.tuples(st.integers(1, 6), st.integers(1, 8)).map(lambda w: (w[0], w[0] + w[1])),
    slippage_bps=st.sampled_from([0.0, 2.0, 25.0]),
    fee_bps=st.sampled_from([0.0, 1.0, 10.0]),
    chunk_bars=st.integers(1, 130),
)
def test_the_vectorised_replay_matches_a_bar_by_bar_loop(
    data: st.DataObject,
    closes: list[float],
    windows: tuple[int, int],
    slippage_bps: float,
    fee_bps: float,
    chunk_bars: int,
) -> None:
    opens = data.draw(st.lists(price, min_size=len(closes), max_size=len(closes)))
    strategy = SmaCrossover(*windows)
    config = VectorConfig(qty=2.0, slippage_bps=slippage_bps, fee_bps=fee_bps, chunk_bars=chunk_bars)
    result = run_vector(bars("X", opens, closes), strategy, config)
    trades, curve, final = loop_reference(opens, closes, strategy, config)
    got = [
        ((entry_ts - T0) // MINUTE, entry_price, (exit_ts - T0) // MINUTE, exit_price, fees)
        for _, entry_ts, entry_price, exit_ts, exit_price, fees, _ in trade_rows(result)
    ]
    assert [(entry, exit_) for entry, _, exit_, _, _ in got] == [(entry, exit_) for entry, _, exit_, _, _ in trades]
    np.testing.assert_allclose(np.array(got).reshape(-1, 5), np.array(trades).reshape(-1, 5), rtol=1e-12)
    np.testing.assert_allclose(result.equity.get_column("equity").to_numpy(), curve, rtol=1e-12)
    assert result.final_equity == pytest.approx(final, rel=1e-12)


# --- the peer benchmark on a tiny input -------------------------------------------------------------


def run_peers(tmp_path: Path, *engines: str) -> dict[str, Any]:
    out = tmp_path / "results"
    arguments = ["--bars", "3000", "--assets", "3", "--asset-bars", "800", "--repeats", "2", "--out", str(out)]
    assert peers.main([*arguments, "--max-bars-slow", "1500", "--engines", *engines]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["peers.json", "peers.md"]
    report = (out / "peers.md").read_text(encoding="utf-8")
    assert "## one asset: 1 asset x 3,000 bars" in report and "## multi asset: 3 assets x 800 bars" in report
    results: dict[str, Any] = json.loads((out / "peers.json").read_text(encoding="utf-8"))
    return results


def test_the_peer_benchmark_reports_hydra_alone(tmp_path: Path) -> None:
    results = run_peers(tmp_path, "hydra")
    assert {"benchmark", "date", "machine", "config", "cases"} <= set(results)
    assert {"cores", "load_avg_start", "load_avg_end", "python", "packages"} <= set(results["machine"])
    cases = results["cases"]
    assert set(cases) == {"one asset", "multi asset"}
    for case, bars_run in zip(cases.values(), (3_000, 2_400), strict=True):
        hydra = case["engines"]["hydra"]
        assert set(case["engines"]) == {"hydra"} and hydra["status"] == "ok"
        assert hydra["bars_run"] == case["bars"] == bars_run and not hydra["extrapolated"]
        assert len(hydra["runs_s"]) == 2 and hydra["hydra_over_engine"] == 1.0 and hydra["comparison"] is None
        assert hydra["trades"] > 0 and case["hydra_memory"]["one_chunk"]["peak_mb"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["vectorbt", "backtesting", "backtrader"])
def test_a_peer_makes_the_same_trades_as_hydra(tmp_path: Path, engine: str) -> None:
    pytest.importorskip(engine)
    results = run_peers(tmp_path, "hydra", engine)
    for case in results["cases"].values():
        figures = case["engines"][engine]
        assert figures["status"] == "ok" and figures["hydra_over_engine"] > 0
        comparison = figures["comparison"]
        assert comparison["same_trades"] and comparison["prices_agree"], comparison
        assert abs(comparison["final_equity_difference"]) < 1e-6
        slow = engine != "vectorbt"
        assert figures["extrapolated"] == (slow and case["bars"] > 1500)
