"""Head to head: HYDRA's vectorised replay against vectorbt, backtesting.py and backtrader, one SMA crossover.

    .venv/bin/python -m bench.peers [--bars N] [--assets K] [--asset-bars N] [--repeats R]
        [--slow-repeats R] [--max-bars-slow N] [--engines hydra vectorbt ...] [--out bench/results]

Two cases of synthetic 1-minute bars (geometric Brownian motion, seed 42): one asset x N bars
(default 1,000,000) and K assets x N bars (default 19 x 100,000, HYDRA's watchlist size). Every
engine runs the same strategy: SMA(20)/SMA(50) crossover, long one unit from the bar after the
fast average crosses above the slow one until the bar after it crosses below, no fees, no
slippage, 100,000 of cash per account. Each engine is configured to fill as HYDRA's SimBroker
does, at the open of the bar after the decision; how each was configured is in the report.

Timed per engine: from its native input already in memory (a polars frame for HYDRA, pandas
frames for the others; converting is not timed) to its closed trades and final equity. The
best of R runs counts (R for HYDRA and vectorbt, --slow-repeats for backtesting.py and
backtrader); a fast engine's first call is reported apart (vectorbt compiles or loads its
numba code then). backtesting.py and backtrader loop in Python per bar: --max-bars-slow caps the bars
they replay (each asset cut to its first bars), and their time for the whole case is then
extrapolated linearly from the capped run, which the report says.

Trades and final equity of every peer are compared with HYDRA's on the same bars. Nothing
here asserts on a timing: the figures, the load average and the machine go to
<out>/peers.json and <out>/peers.md. An engine whose library is not installed is skipped
(install the bench extra: `pip install -c constraints.txt -e ".[bench]"`).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import tracemalloc
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from backtest.vector import VectorConfig, run_vector
from bench._report import Timed, run_machine, timed, write_files
from core.config import DEFAULT_WATCHLIST
from strategies.sma_crossover import SmaCrossover

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results"
SEED = 42
FAST, SLOW = 20, 50
QTY = 1.0
STARTING_CASH = 100_000.0
START = datetime(2024, 1, 1, tzinfo=UTC)
START_PRICE = 100.0
# Per minute: about 50% a year of volatility, as a liquid crypto pair, so 1M bars stay in a
# plausible price range; a small gap between a bar's open and the previous close keeps
# next-open fills apart from same-close fills.
SIGMA = 7e-4
GAP_SIGMA = 1e-4
WICK_SIGMA = 2e-4
# Prices agree when they differ by rounding only.
PRICE_RTOL = 1e-9
# The targets (reported against, never asserted): HYDRA's time over the peer's.
TARGETS = {"vectorbt": 1.0, "backtesting": 1 / 50}
VERSIONED_PACKAGES = ("numpy", "polars", "pandas", "numba", "vectorbt", "backtesting", "backtrader")
TRADE_COLUMNS = ("symbol", "entry_ts", "entry_price", "exit_ts", "exit_price")
MICROS_PER_MINUTE = 60_000_000
OHLCV = ("open", "high", "low", "close", "volume")
UNIX_EPOCH_NAIVE = datetime(1970, 1, 1)  # noqa: DTZ001 - backtrader hands back naive UTC times


# --- data --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    bars: pl.DataFrame  # symbol, ts_event, open, high, low, close, volume; sorted by symbol then time
    symbols: tuple[str, ...]
    bars_per_asset: int

    @property
    def size(self) -> int:
        return self.bars.height

    def cut(self, bars_per_asset: int) -> Case:
        """The first bars of every asset."""
        if bars_per_asset >= self.bars_per_asset:
            return self
        head = self.bars.filter(pl.int_range(pl.len()).over("symbol") < bars_per_asset)
        return Case(self.name, head, self.symbols, bars_per_asset)


def synthetic_case(name: str, assets: int, bars_per_asset: int, seed: int = SEED) -> Case:
    """GBM minute bars of `assets` symbols on one clock: log returns N(0, SIGMA) per minute."""
    rng = np.random.default_rng(seed)
    shape = (assets, bars_per_asset)
    close = START_PRICE * np.exp(np.cumsum(rng.normal(0.0, SIGMA, shape), axis=1))
    previous = np.concatenate((np.full((assets, 1), START_PRICE), close[:, :-1]), axis=1)
    open_ = previous * np.exp(rng.normal(0.0, GAP_SIGMA, shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, WICK_SIGMA, shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, WICK_SIGMA, shape)))
    volume = np.round(rng.lognormal(3.0, 1.0, shape), 4)
    symbols = DEFAULT_WATCHLIST[:assets] if assets <= len(DEFAULT_WATCHLIST) else [f"GBM{i}" for i in range(assets)]
    start = int((START - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
    ts = start + np.arange(bars_per_asset, dtype=np.int64) * MICROS_PER_MINUTE
    bars = pl.DataFrame(
        {
            "symbol": np.repeat(np.array(symbols, dtype=object), bars_per_asset),
            "ts_event": np.tile(ts, assets),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        },
        schema_overrides={"symbol": pl.String},
    ).with_columns(pl.from_epoch("ts_event", time_unit="us").dt.replace_time_zone("UTC"))
    return Case(name, bars, tuple(symbols), bars_per_asset)


def _naive_index(case: Case) -> pd.DatetimeIndex:
    first = case.bars.filter(pl.col("symbol") == case.symbols[0])
    return pd.DatetimeIndex(first.get_column("ts_event").dt.replace_time_zone(None).to_numpy())


def _wide(case: Case) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Close and open as time x symbol frames: vectorbt's input."""
    shape = (len(case.symbols), case.bars_per_asset)
    index = _naive_index(case)
    close, open_ = (
        pd.DataFrame(case.bars.get_column(name).to_numpy().reshape(shape).T, index=index, columns=list(case.symbols))
        for name in ("close", "open")
    )
    return close, open_


def _ohlcv_frames(case: Case) -> dict[str, pd.DataFrame]:
    """One OHLCV frame per symbol, capitalised columns on a DatetimeIndex: backtesting.py's and backtrader's input."""
    index = _naive_index(case)
    frames = {}
    for symbol in case.symbols:
        rows = case.bars.filter(pl.col("symbol") == symbol)
        columns = {name.capitalize(): rows.get_column(name).to_numpy() for name in OHLCV}
        frames[symbol] = pd.DataFrame(columns, index=index)
    return frames


def _micros(values: Any) -> np.ndarray[Any, Any]:
    return np.asarray(values).astype("datetime64[us]").astype(np.int64)


# --- engines -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    trades: pl.DataFrame  # closed round trips: TRADE_COLUMNS, times as micros
    open_positions: int
    final_equity: float  # STARTING_CASH plus every symbol's profit, open positions marked at the last close


def _trades_frame(columns: Mapping[str, Any]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {name: columns[name] for name in TRADE_COLUMNS},
        schema={
            "symbol": pl.String,
            "entry_ts": pl.Int64,
            "entry_price": pl.Float64,
            "exit_ts": pl.Int64,
            "exit_price": pl.Float64,
        },
    )
    return frame.sort("symbol", "entry_ts")


def run_hydra(bars: pl.DataFrame) -> Outcome:
    result = run_vector(bars, SmaCrossover(FAST, SLOW), VectorConfig(qty=QTY, starting_cash=STARTING_CASH))
    trades = result.trades.select(
        "symbol", pl.col("entry_ts").dt.epoch("us"), "entry_price", pl.col("exit_ts").dt.epoch("us"), "exit_price"
    )
    return Outcome(trades.sort("symbol", "entry_ts"), result.open_positions.height, result.final_equity)


def run_vectorbt(inputs: tuple[pd.DataFrame, pd.DataFrame]) -> Outcome:
    import vectorbt as vbt

    close, open_ = inputs
    fast = vbt.MA.run(close, FAST)
    slow = vbt.MA.run(close, SLOW)
    # from_signals fills at `price` on the signal's own bar: signals one bar later, at the open.
    entries = fast.ma_crossed_above(slow).vbt.fshift(1, fill_value=False).to_numpy()
    exits = fast.ma_crossed_below(slow).vbt.fshift(1, fill_value=False).to_numpy()
    portfolio = vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=open_,
        size=QTY,
        size_type="amount",
        direction="longonly",
        fees=0.0,
        slippage=0.0,
        init_cash=STARTING_CASH,
    )
    records = portfolio.trades.records
    closed = records[records["status"] == 1]
    ts = _micros(close.index)
    symbols = np.array(close.columns, dtype=object)
    trades = _trades_frame(
        {
            "symbol": symbols[closed["col"]],
            "entry_ts": ts[closed["entry_idx"]],
            "entry_price": closed["entry_price"],
            "exit_ts": ts[closed["exit_idx"]],
            "exit_price": closed["exit_price"],
        }
    )
    profit = float((portfolio.final_value() - STARTING_CASH).sum())
    return Outcome(trades, int((records["status"] == 0).sum()), STARTING_CASH + profit)


@cache
def _backtesting_strategy() -> type:
    from backtesting import Strategy
    from backtesting.lib import crossover

    def sma(values: Any, window: int) -> pd.Series:
        return pd.Series(values).rolling(window).mean()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy(size=QTY)
            elif crossover(self.slow, self.fast):
                self.position.close()

    return SmaCross


def run_backtesting(frames: Mapping[str, pd.DataFrame]) -> Outcome:
    from backtesting import Backtest

    parts, profit, still_open = [], 0.0, 0
    for symbol, frame in frames.items():
        with warnings.catch_warnings():
            # "Some trades remain open at the end of backtest": as in HYDRA, they stay open, marked.
            warnings.simplefilter("ignore", UserWarning)
            stats = Backtest(frame, _backtesting_strategy(), cash=STARTING_CASH, commission=0.0).run()
        trades = stats["_trades"]
        parts.append(
            _trades_frame(
                {
                    "symbol": [symbol] * len(trades),
                    "entry_ts": _micros(trades["EntryTime"]),
                    "entry_price": trades["EntryPrice"].to_numpy(),
                    "exit_ts": _micros(trades["ExitTime"]),
                    "exit_price": trades["ExitPrice"].to_numpy(),
                }
            )
        )
        profit += float(stats["Equity Final [$]"]) - STARTING_CASH
        still_open += len(stats["_strategy"].trades)
    return Outcome(pl.concat(parts).sort("symbol", "entry_ts"), still_open, STARTING_CASH + profit)


@cache
def _backtrader_strategy() -> type:
    import backtrader as bt

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.crosses = {
                data: bt.ind.CrossOver(bt.ind.SMA(data.close, period=FAST), bt.ind.SMA(data.close, period=SLOW))
                for data in self.datas
            }
            self.fills: list[tuple[str, datetime, float, bool]] = []

        def next(self) -> None:
            for data, cross in self.crosses.items():
                held = self.getposition(data).size
                if not held and cross[0] > 0:
                    self.buy(data=data, size=QTY)
                elif held and cross[0] < 0:
                    self.close(data=data)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                moment = bt.num2date(order.executed.dt)
                self.fills.append((order.data._name, moment, order.executed.price, order.isbuy()))

    return SmaCross


def run_backtrader(frames: Mapping[str, pd.DataFrame]) -> Outcome:
    import backtrader as bt

    cerebro = bt.Cerebro(stdstats=False)  # no observers: they only record for plots
    cerebro.broker.setcash(STARTING_CASH)
    for symbol, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=symbol)
    cerebro.addstrategy(_backtrader_strategy())
    strategy = cerebro.run()[0]
    by_symbol: dict[str, list[tuple[int, float, bool]]] = {}
    for symbol, moment, price, is_buy in strategy.fills:
        # backtrader keeps time as a float day number: round it back to the bar's second.
        second = round((moment - UNIX_EPOCH_NAIVE).total_seconds())
        by_symbol.setdefault(symbol, []).append((second * 1_000_000, price, is_buy))
    columns: dict[str, list[Any]] = {name: [] for name in TRADE_COLUMNS}
    for symbol, fills in by_symbol.items():
        for (entry_ts, entry_price, _), (exit_ts, exit_price, _) in zip(fills[::2], fills[1::2], strict=False):
            for name, value in zip(TRADE_COLUMNS, (symbol, entry_ts, entry_price, exit_ts, exit_price), strict=True):
                columns[name].append(value)
    still_open = sum(1 for data in strategy.datas if strategy.getposition(data).size)
    return Outcome(_trades_frame(columns), still_open, float(cerebro.broker.getvalue()))


@dataclass(frozen=True)
class Engine:
    name: str
    module: str
    label: str
    slow: bool  # a Python loop per bar: capped by --max-bars-slow, timed --slow-repeats times
    prepare: Callable[[Case], Any]  # the engine's native input (not timed)
    run: Callable[[Any], Outcome]
    setup: str  # how it was configured to fill as HYDRA does


ENGINES: tuple[Engine, ...] = (
    Engine(
        "hydra",
        "backtest",
        "HYDRA backtest.vector",
        False,
        lambda case: case.bars,
        run_hydra,
        "`run_vector(bars, SmaCrossover(20, 50), VectorConfig(qty=1, starting_cash=100_000))`: numpy over whole "
        "arrays, SimBroker's convention (decided on a close, filled at the next open).",
    ),
    Engine(
        "vectorbt",
        "vectorbt",
        "vectorbt",
        False,
        _wide,
        run_vectorbt,
        "`MA.run` x2, `ma_crossed_above/below`, signals shifted one bar (`fshift(1)`) and `price=open` so "
        "`Portfolio.from_signals` (which fills at `price` on the signal's own bar, the close by default) fills at "
        "the next open; `size=1` amount, long only, one column per asset (no cash sharing: profits summed); "
        "numba engine (vectorbt-rust not installed).",
    ),
    Engine(
        "backtesting",
        "backtesting",
        "backtesting.py",
        True,
        _ohlcv_frames,
        run_backtesting,
        "`Strategy.I` with a pandas rolling mean, `lib.crossover`, `buy(size=1)` / `position.close()`; market "
        "orders fill at the next open by default (`trade_on_close=False`); one `Backtest` per asset (it runs one "
        "instrument), profits summed; `Backtest.run` also computes its statistics, part of the time.",
    ),
    Engine(
        "backtrader",
        "backtrader",
        "backtrader",
        True,
        _ohlcv_frames,
        run_backtrader,
        "`bt.ind.SMA` x2 and `bt.ind.CrossOver`, `buy(size=1)` / `close()`; market orders fill at the next open "
        "(no cheat-on-open); one `Cerebro` with a `PandasData` feed per asset and one account; "
        "`stdstats=False` (no observers), preload and runonce (defaults).",
    ),
)
ENGINE_NAMES = tuple(engine.name for engine in ENGINES)


def installed(engine: Engine) -> bool:
    return importlib.util.find_spec(engine.module) is not None


# --- measure -----------------------------------------------------------------------------------------


def compare(reference: Outcome, outcome: Outcome) -> dict[str, Any]:
    """How an engine's outcome differs from HYDRA's on the same bars."""
    ours, theirs = reference.trades, outcome.trades
    keys = ["symbol", "entry_ts", "exit_ts"]
    same_trades = ours.height == theirs.height and ours.select(keys).equals(theirs.select(keys))
    price_difference = None
    first_difference = None
    if same_trades:
        gaps = [
            np.abs(theirs.get_column(name).to_numpy() - ours.get_column(name).to_numpy())
            / ours.get_column(name).to_numpy()
            for name in ("entry_price", "exit_price")
        ]
        price_difference = max((float(gap.max()) for gap in gaps if gap.size), default=0.0)
    else:
        joined = (
            ours.select(keys)
            .with_row_index("row")
            .join(theirs.select(keys).with_row_index("row"), on="row", how="full", suffix="_peer")
        )
        differing = joined.filter(
            (pl.col("symbol") != pl.col("symbol_peer")).fill_null(True)
            | (pl.col("entry_ts") != pl.col("entry_ts_peer")).fill_null(True)
            | (pl.col("exit_ts") != pl.col("exit_ts_peer")).fill_null(True)
        ).sort(pl.coalesce("row", "row_peer"))
        if differing.height:
            row = differing.row(0, named=True)
            first_difference = {name: _as_text(value) for name, value in row.items() if name not in ("row", "row_peer")}
    return {
        "same_trades": same_trades,
        "trades": outcome.trades.height,
        "hydra_trades": ours.height,
        "open_positions": outcome.open_positions,
        "hydra_open_positions": reference.open_positions,
        "max_price_rel_difference": price_difference,
        "prices_agree": price_difference is not None and price_difference <= PRICE_RTOL,
        "final_equity": outcome.final_equity,
        "final_equity_difference": outcome.final_equity - reference.final_equity,
        "first_difference": first_difference,
    }


def _as_text(value: Any) -> Any:
    if isinstance(value, int) and value > 10**12:  # a time in micros
        return datetime.fromtimestamp(value / 1e6, UTC).isoformat()
    return value


@dataclass
class CaseRun:
    case: Case
    references: dict[int, Outcome] = field(default_factory=dict)  # HYDRA's outcome per bars per asset

    def reference(self, case: Case) -> Outcome:
        if case.bars_per_asset not in self.references:
            self.references[case.bars_per_asset] = run_hydra(case.bars)
        return self.references[case.bars_per_asset]


def measure_engine(engine: Engine, run: CaseRun, repeats: int, max_bars: int | None) -> dict[str, Any]:
    full = run.case
    bars_per_asset = full.bars_per_asset
    if engine.slow and max_bars is not None:
        bars_per_asset = max(min(bars_per_asset, max_bars // len(full.symbols)), SLOW + 2)
    case = full.cut(bars_per_asset)
    native = engine.prepare(case)
    gc.collect()
    outcome, first = timed(lambda: engine.run(native))
    # A fast engine's first call is apart (vectorbt compiles or loads its numba code then); a slow
    # engine's first call is one of its timed runs: it has nothing to warm, and a run takes minutes.
    runs: list[Timed] = [first] if engine.slow else []
    while len(runs) < repeats:
        gc.collect()
        runs.append(timed(lambda: engine.run(native))[1])
    best = min(runs, key=lambda timing: timing.wall_s)
    scale = full.size / case.size
    return {
        "status": "ok",
        "bars_run": case.size,
        "bars_per_asset_run": case.bars_per_asset,
        "extrapolated": case.size < full.size,
        "first_call_s": first.wall_s,
        "best_wall_s": best.wall_s,
        "best_cpu_s": best.cpu_s,
        "runs_s": [timing.wall_s for timing in runs],
        "load_1m": [timing.load_1m for timing in runs],
        "wall_s": best.wall_s * scale,  # for the whole case; measured unless extrapolated
        "bars_per_s": case.size / best.wall_s,
        "comparison": None if engine.name == "hydra" else compare(run.reference(case), outcome),
        "final_equity": outcome.final_equity,
        "trades": outcome.trades.height,
        "open_positions": outcome.open_positions,
    }


def hydra_memory(case: Case) -> dict[str, Any]:
    """Peak numpy allocations of one replay (tracemalloc), in default chunks and in one chunk of the whole
    history: what chunking bounds. Polars' own buffers (input, equity curve) are not traced."""
    figures = {}
    for label, chunk in (("default_chunks", VectorConfig().chunk_bars), ("one_chunk", case.bars_per_asset)):
        gc.collect()
        tracemalloc.start()
        run_vector(case.bars, SmaCrossover(FAST, SLOW), VectorConfig(qty=QTY, chunk_bars=chunk))
        figures[label] = {"chunk_bars": chunk, "peak_mb": tracemalloc.get_traced_memory()[1] / 1e6}
        tracemalloc.stop()
    return figures


def measure_case(
    case: Case, engines: Sequence[Engine], repeats: int, slow_repeats: int, max_bars: int | None
) -> dict[str, Any]:
    run = CaseRun(case)
    results: dict[str, Any] = {}
    for engine in engines:
        if not installed(engine):
            results[engine.name] = {"status": "not installed"}
            continue
        print(f"  {case.name}: {engine.label}", flush=True)
        results[engine.name] = measure_engine(engine, run, slow_repeats if engine.slow else repeats, max_bars)
    hydra = results.get("hydra", {})
    for name, figures in results.items():
        if figures["status"] == "ok" and hydra.get("status") == "ok":
            figures["hydra_over_engine"] = hydra["wall_s"] / figures["wall_s"]
            figures["engine_over_hydra"] = figures["wall_s"] / hydra["wall_s"]
            target = TARGETS.get(name)
            figures["target_hydra_over_engine"] = target
            figures["meets_target"] = None if target is None else figures["hydra_over_engine"] <= target
    return {
        "assets": len(case.symbols),
        "bars_per_asset": case.bars_per_asset,
        "bars": case.size,
        "engines": results,
        "hydra_memory": hydra_memory(case) if "hydra" in results else None,
    }


def run(
    cases: Sequence[tuple[str, int, int]],
    engines: Sequence[Engine],
    repeats: int,
    slow_repeats: int,
    max_bars: int | None,
    out: Path,
) -> dict[str, Any]:
    load_start = os.getloadavg()
    measured = {}
    for name, assets, bars_per_asset in cases:
        case = synthetic_case(name, assets, bars_per_asset)
        measured[name] = measure_case(case, engines, repeats, slow_repeats, max_bars)
        del case
        gc.collect()
    results = {
        "benchmark": "peers",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": run_machine(VERSIONED_PACKAGES, load_start),
        "config": {
            "strategy": f"SMA({FAST})/SMA({SLOW}) crossover, long only",
            "qty": QTY,
            "starting_cash": STARTING_CASH,
            "fees": 0.0,
            "slippage": 0.0,
            "seed": SEED,
            "gbm": {"sigma_per_minute": SIGMA, "gap_sigma": GAP_SIGMA, "start_price": START_PRICE},
            "repeats": repeats,
            "slow_repeats": slow_repeats,
            "max_bars_slow": max_bars,
            "engines": {engine.name: engine.setup for engine in engines},
        },
        "cases": measured,
    }
    write_files(out, {"peers.json": json.dumps(results, indent=2) + "\n", "peers.md": markdown(results)})
    return results


# --- report ------------------------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.1f} k"


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _load(averages: Sequence[float]) -> str:
    return "/".join(f"{value:.2f}" for value in averages)


def _agreement(comparison: Mapping[str, Any] | None) -> str:
    if comparison is None:
        return "reference"
    if comparison["same_trades"]:
        difference = comparison["max_price_rel_difference"]
        prices = "same prices" if comparison["prices_agree"] else f"prices differ by up to {difference:.1e}"
        return f"same {comparison['trades']:,} trades, {prices}"
    return f"**different**: {comparison['trades']:,} trades vs {comparison['hydra_trades']:,}"


def markdown(results: Mapping[str, Any]) -> str:
    machine, config = results["machine"], results["config"]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    labels = {engine.name: engine.label for engine in ENGINES}
    lines = [
        f"# Peer benchmark: {config['strategy']} ({results['date']})",
        "",
        f"Synthetic 1-minute GBM bars (seed {config['seed']}, {config['gbm']['sigma_per_minute']:.0e} per minute), "
        f"qty {config['qty']:g}, cash {config['starting_cash']:,.0f}, no fees or slippage. Best of "
        f"{config['repeats']} runs (backtesting.py and backtrader: {config['slow_repeats']}), "
        "HYDRA and vectorbt after a first call. "
        f"Machine: {machine['cores']} cores ({machine['cpu']}), load average {_load(machine['load_avg_start'])} at "
        f"start and {_load(machine['load_avg_end'])} at the end, Python {machine['python']}, {packages}; "
        f"peak RSS {machine['peak_rss_mb']:.0f} MB.",
        "",
        "Wall time is from each engine's native input in memory to its trades and final equity. "
        "HYDRA/engine is HYDRA's time over the engine's on the same case (below 1: HYDRA is faster); "
        "engine/HYDRA is how many times longer the engine takes.",
        "",
    ]
    extrapolated = False
    for name, case in results["cases"].items():
        lines += [
            f"## {name}: {case['assets']} asset{'s' if case['assets'] > 1 else ''} x {case['bars_per_asset']:,} bars "
            f"({case['bars']:,} bars)",
            "",
            "| engine | wall s | bars/s | HYDRA/engine | engine/HYDRA | target | first call s | runs s | load (1 min) "
            "| trades and equity vs HYDRA | final equity |",
            "|---|---:|---:|---:|---:|---|---:|---|---|---|---:|",
        ]
        for engine, figures in case["engines"].items():
            if figures["status"] != "ok":
                lines.append(f"| {labels[engine]} | {figures['status']} | | | | | | | | | |")
                continue
            mark = ""
            if figures["extrapolated"]:
                extrapolated = True
                mark = f" (est.; {figures['bars_run']:,} bars run in {_seconds(figures['best_wall_s'])} s)"
            target = figures.get("target_hydra_over_engine")
            verdict = "-" if target is None else f"<= {target:g}: {'met' if figures['meets_target'] else 'missed'}"
            lines.append(
                f"| {labels[engine]} | {_seconds(figures['wall_s'])}{mark} | {_rate(figures['bars_per_s'])} | "
                f"{figures.get('hydra_over_engine', math.nan):.3f} | "
                f"{figures.get('engine_over_hydra', math.nan):.1f} | "
                f"{verdict} | {_seconds(figures['first_call_s'])} | "
                f"{', '.join(_seconds(value) for value in figures['runs_s'])} | {_load(figures['load_1m'])} | "
                f"{_agreement(figures['comparison'])} | {figures['final_equity']:,.4f} |"
            )
        lines.append("")
        lines += _differences(case, labels)
        memory = case.get("hydra_memory")
        if memory:
            default, whole = memory["default_chunks"], memory["one_chunk"]
            lines += [
                f"HYDRA's peak numpy allocations (tracemalloc): {default['peak_mb']:.1f} MB in chunks of "
                f"{default['chunk_bars']:,} bars, {whole['peak_mb']:.1f} MB in one chunk of {whole['chunk_bars']:,}.",
                "",
            ]
    if extrapolated:
        lines += [
            f"(est.) The engine replayed only the first bars of each asset (--max-bars-slow "
            f"{config['max_bars_slow']:,}); its time for the whole case is the measured one scaled by the bars "
            "(it loops per bar, so its time grows linearly). Its trades are compared with HYDRA's on the same "
            "cut bars.",
            "",
        ]
    lines += ["## How each engine was set up", ""]
    lines += [f"- {labels[name]}: {setup}" for name, setup in config["engines"].items()]
    lines += [
        "",
        "Conventions that could differ but do not here: a tie of the averages is no cross in backtesting.py's "
        "`crossover` (strictly below, then strictly above), while HYDRA, vectorbt and backtrader cross from the side "
        "before the tie; GBM closes make exact ties vanishingly rare. Open positions at the end are kept open and "
        "marked at the last close by all four. vectorbt counts an open trade among its trades; only closed ones are "
        "compared.",
        "",
    ]
    return "\n".join(lines)


def _differences(case: Mapping[str, Any], labels: Mapping[str, str]) -> list[str]:
    lines = []
    for engine, figures in case["engines"].items():
        comparison = figures.get("comparison")
        if not comparison:
            continue
        text = (
            f"- {labels[engine]}: final equity {comparison['final_equity_difference']:+.2e} from HYDRA's; "
            f"open positions {comparison['open_positions']} (HYDRA {comparison['hydra_open_positions']})"
        )
        if comparison["first_difference"]:
            text += f"; first differing trade: {comparison['first_difference']}"
        lines.append(text + ".")
    return [*lines, ""] if lines else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars of the one-asset case")
    parser.add_argument("--assets", type=int, default=len(DEFAULT_WATCHLIST), help="assets of the multi-asset case")
    parser.add_argument("--asset-bars", type=int, default=100_000, help="bars per asset of the multi-asset case")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of HYDRA and vectorbt; the best counts")
    parser.add_argument("--slow-repeats", type=int, default=1, help="timed runs of backtesting.py and backtrader")
    parser.add_argument(
        "--max-bars-slow", type=int, default=None, help="cap on the bars backtesting.py and backtrader replay per case"
    )
    parser.add_argument("--engines", nargs="+", choices=ENGINE_NAMES, default=list(ENGINE_NAMES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for peers.json and peers.md")
    arguments = parser.parse_args(argv)
    if min(arguments.bars, arguments.asset_bars) < SLOW + 2 or arguments.assets < 1:
        parser.error(f"--bars and --asset-bars must be at least {SLOW + 2}, --assets at least 1")
    if min(arguments.repeats, arguments.slow_repeats) < 1:
        parser.error("--repeats and --slow-repeats must be at least 1")
    engines = [engine for engine in ENGINES if engine.name in arguments.engines]
    cases = [("one asset", 1, arguments.bars), ("multi asset", arguments.assets, arguments.asset_bars)]
    results = run(cases, engines, arguments.repeats, arguments.slow_repeats, arguments.max_bars_slow, arguments.out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
