"""Vectorised replay of a signal strategy over minute bars: whole arrays at once, no loop per bar.

API
    result = run_vector(bars, SmaCrossover(), VectorConfig(qty=1.0, slippage_bps=2.0, fee_bps=1.0))
    bars      a polars frame (symbol, ts_event, open, close; other columns are ignored), or an
              iterable of such frames that are consecutive time chunks of one history
    strategy  a core.strategy.SignalStrategy: closes -> long or flat after each close
    result.trades          closed round trips: symbol, entry_ts, entry_price, exit_ts, exit_price, qty, fees, pnl
    result.open_positions  what is still held after the last bar, marked at its symbol's last close
    result.equity          ts_event, equity: the account after every bar's close (all symbols together)
    result.final_equity    cash plus open positions marked at their last close

Fill convention: HYDRA's SimBroker (adapters.sim_broker). A target decided on bar t's close is an
order that fills at bar t+1's open, moved against the order by slippage_bps (buys pay
open x (1 + s), sells receive open x (1 - s)), and pays fee_bps of the fill's notional. A
decision on a symbol's last bar has no next open and does not trade. Long only, a fixed qty
per position; each symbol trades on its own bars, independently of the others, out of one
account (no buying-power check: the qty is fixed, as in the benchmark). Left out, unlike
SimBroker: the volume cap per bar, market hours, and partial fills.

Memory: a symbol's bars are replayed in slices of at most chunk_bars, handing the next slice the
strategy's warmup closes, its last target and the open position, so temporaries (a dozen
arrays of a slice's length) stay bounded however long the history. The caller bounds the
input itself by passing an iterable of time chunks (a month of bars from the warehouse at a
time, say): each needs only its own bars in memory, plus 16 bytes a bar for the equity curve,
which is kept per distinct bar time for the whole run. The result is the same for any
chunking, but for the rounding of cumulative sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.snapshot import micros_of
from core.strategy import SignalStrategy

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BPS = 1e-4
DEFAULT_CHUNK_BARS = 1 << 18
TS_TYPE = pl.Datetime("us", "UTC")
TRADE_SCHEMA: dict[str, Any] = {
    "symbol": pl.String,
    "entry_ts": TS_TYPE,
    "entry_price": pl.Float64,
    "exit_ts": TS_TYPE,
    "exit_price": pl.Float64,
    "qty": pl.Float64,
    "fees": pl.Float64,
    "pnl": pl.Float64,
}
OPEN_POSITION_SCHEMA: dict[str, Any] = {
    "symbol": pl.String,
    "entry_ts": TS_TYPE,
    "entry_price": pl.Float64,
    "qty": pl.Float64,
    "mark": pl.Float64,
    "unrealized_pnl": pl.Float64,
}
EQUITY_SCHEMA: dict[str, Any] = {"ts_event": TS_TYPE, "equity": pl.Float64}


@dataclass(frozen=True, slots=True)
class VectorConfig:
    qty: float = 1.0
    starting_cash: float = 100_000.0
    slippage_bps: float = 0.0
    fee_bps: float = 0.0
    chunk_bars: int = DEFAULT_CHUNK_BARS

    def __post_init__(self) -> None:
        if not (np.isfinite(self.qty) and self.qty > 0 and np.isfinite(self.starting_cash)):
            raise ValueError(f"qty must be positive and starting_cash finite, got {self.qty}, {self.starting_cash}")
        if not (0 <= self.slippage_bps < 10_000 and 0 <= self.fee_bps < 10_000):
            raise ValueError(f"slippage_bps and fee_bps must be in [0, 10000), got {self.slippage_bps}, {self.fee_bps}")
        if self.chunk_bars < 1:
            raise ValueError(f"chunk_bars must be at least 1, got {self.chunk_bars}")


@dataclass(frozen=True, slots=True)
class VectorResult:
    trades: pl.DataFrame
    open_positions: pl.DataFrame
    equity: pl.DataFrame
    final_equity: float
    bars: int


@dataclass(slots=True)
class _Entry:
    ts: int
    price: float
    fee: float


@dataclass(slots=True)
class _SymbolBook:
    """One symbol's state between slices: what the next slice's first bar depends on."""

    history: FloatArray  # the last `warmup` closes
    target: bool = False  # decided on the last close: fills at the next bar's open
    holding: bool = False  # held through the last bar
    entry: _Entry | None = None
    cash: float = 0.0  # net cash of this symbol's fills
    value: float = 0.0  # cash plus the position marked at the last close
    last_close: float = float("nan")
    trades: list[tuple[IntArray, FloatArray, IntArray, FloatArray, FloatArray]] = field(default_factory=list)


def run_vector(
    bars: pl.DataFrame | Iterable[pl.DataFrame], strategy: SignalStrategy, config: VectorConfig = VectorConfig()
) -> VectorResult:
    """Replay `strategy` over `bars` under SimBroker's fill convention; see the module docstring."""
    frames = [bars] if isinstance(bars, pl.DataFrame) else bars
    books: dict[str, _SymbolBook] = {}
    curve: list[pl.DataFrame] = []
    latest: int | None = None
    count = 0
    for frame in frames:
        prepared, ts, runs = _prepared(frame)
        if prepared.is_empty():
            continue
        if latest is not None and ts.min() <= latest:
            raise ValueError("chunks of bars must follow each other in time: one starts at or before the last's end")
        latest = int(ts.max())
        opens = prepared.get_column("open").to_numpy()
        closes = prepared.get_column("close").to_numpy()
        deltas = np.empty(prepared.height)
        for symbol, low, high in runs:
            book = books.get(symbol)
            if book is None:
                book = books[symbol] = _SymbolBook(history=np.empty(0))
            for start in range(low, high, config.chunk_bars):
                stop = min(start + config.chunk_bars, high)
                deltas[start:stop] = _replay(
                    book, strategy, config, ts[start:stop], opens[start:stop], closes[start:stop]
                )
        curve.append(_summed_by_time(ts, deltas, runs))
        count += prepared.height
    return VectorResult(
        trades=_trades(books, config.qty),
        open_positions=_open_positions(books, config.qty),
        equity=_equity(curve, config.starting_cash),
        final_equity=config.starting_cash + sum(book.value for book in books.values()),
        bars=count,
    )


def _prepared(frame: pl.DataFrame) -> tuple[pl.DataFrame, IntArray, list[tuple[str, int, int]]]:
    """The columns replayed, sorted by symbol then time (left as they are when they already are) and
    checked; their times as micros; each symbol's rows as (symbol, first, end)."""
    selected = frame.select("symbol", "ts_event", "open", "close")
    prices = pl.col("open", "close")
    if selected.select(pl.any_horizontal(prices.is_null() | prices.is_nan()).any()).item():
        raise ValueError("bars with a missing or NaN open or close cannot be replayed")
    runs, ts, steps = _layout(selected)
    if len({symbol for symbol, _, _ in runs}) < len(runs) or (steps < 0).any():
        selected = selected.sort("symbol", "ts_event")
        runs, ts, steps = _layout(selected)
    if (steps == 0).any():
        raise ValueError("two bars of one symbol share a ts_event")
    return selected, ts, runs


def _layout(frame: pl.DataFrame) -> tuple[list[tuple[str, int, int]], IntArray, IntArray]:
    """The frame's runs of one symbol, its times, and the step in time from each row to the next."""
    runs = _symbol_runs(frame)
    ts = micros_of(frame.get_column("ts_event"))
    steps = np.diff(ts)
    # A step from one symbol's last bar to the next symbol's first is no step back in time.
    steps[[end - 1 for _, _, end in runs[:-1]]] = 1
    return runs, ts, steps


def _symbol_runs(frame: pl.DataFrame) -> list[tuple[str, int, int]]:
    runs = frame.get_column("symbol").rle()
    lengths = runs.struct.field("len").to_list()
    ends = np.cumsum(lengths).tolist()
    return [
        (symbol, end - length, end)
        for symbol, length, end in zip(runs.struct.field("value").to_list(), lengths, ends, strict=True)
    ]


def _replay(
    book: _SymbolBook,
    strategy: SignalStrategy,
    config: VectorConfig,
    ts: IntArray,
    opens: FloatArray,
    closes: FloatArray,
) -> FloatArray:
    """Replay one slice of a symbol's bars; returns the change of the account's value at each bar's close."""
    seen = book.history.shape[0]
    series = np.concatenate((book.history, closes)) if seen else closes
    targets = strategy.targets(series, seen, book.target)
    # Held through bar i: the target decided on bar i - 1's close, filled at bar i's open.
    holding = np.empty(closes.shape[0], dtype=np.bool_)
    holding[0] = book.target
    holding[1:] = targets[:-1]
    steps = np.diff(holding.view(np.int8), prepend=np.int8(book.holding))
    buys, sells = np.flatnonzero(steps > 0), np.flatnonzero(steps < 0)
    slippage, fee_rate, qty = config.slippage_bps * BPS, config.fee_bps * BPS, config.qty
    buy_prices = opens[buys] * (1.0 + slippage)
    sell_prices = opens[sells] * (1.0 - slippage)
    buy_fees = fee_rate * qty * buy_prices
    sell_fees = fee_rate * qty * sell_prices
    flows = np.zeros(closes.shape[0])
    flows[buys] = -(qty * buy_prices + buy_fees)
    flows[sells] = qty * sell_prices - sell_fees
    values = np.cumsum(flows)
    values += book.cash
    cash = float(values[-1])
    values += holding * (qty * closes)
    deltas = np.diff(values, prepend=book.value)

    entry_ts, entry_prices, entry_fees = ts[buys], buy_prices, buy_fees
    if book.entry is not None:
        entry_ts = np.concatenate(([book.entry.ts], entry_ts))
        entry_prices = np.concatenate(([book.entry.price], entry_prices))
        entry_fees = np.concatenate(([book.entry.fee], entry_fees))
    closed = sells.shape[0]  # buys and sells alternate: the first `closed` entries are the ones sold
    if closed:
        book.trades.append(
            (entry_ts[:closed], entry_prices[:closed], ts[sells], sell_prices, entry_fees[:closed] + sell_fees)
        )
    book.entry = _Entry(int(entry_ts[-1]), float(entry_prices[-1]), float(entry_fees[-1])) if holding[-1] else None
    book.history = series[-strategy.warmup :].copy() if strategy.warmup else np.empty(0)
    book.target, book.holding = bool(targets[-1]), bool(holding[-1])
    book.cash, book.value, book.last_close = cash, float(values[-1]), float(closes[-1])
    return deltas


def _summed_by_time(ts: IntArray, deltas: FloatArray, runs: list[tuple[str, int, int]]) -> pl.DataFrame:
    """The account's change at each distinct bar time of a frame sorted by symbol then time."""
    width = runs[0][2]
    if len(runs) == 1:
        return pl.DataFrame({"ts_event": ts, "delta": deltas})
    if ts.shape[0] == width * len(runs) and (ts.reshape(len(runs), width) == ts[:width]).all():
        # Every symbol has a bar at the same times (the usual minute grid): a sum down the columns,
        # several times faster than grouping by time.
        return pl.DataFrame({"ts_event": ts[:width], "delta": deltas.reshape(len(runs), width).sum(axis=0)})
    return (
        pl.DataFrame({"ts_event": ts, "delta": deltas}).group_by("ts_event").agg(pl.col("delta").sum()).sort("ts_event")
    )


def _as_time(column: str) -> pl.Expr:
    return pl.from_epoch(column, time_unit="us").dt.replace_time_zone("UTC")


def _trades(books: dict[str, _SymbolBook], qty: float) -> pl.DataFrame:
    parts = [
        pl.DataFrame(
            {
                "symbol": np.full(entry_ts.shape[0], symbol, dtype=object),
                "entry_ts": entry_ts,
                "entry_price": entry_prices,
                "exit_ts": exit_ts,
                "exit_price": exit_prices,
                "fees": fees,
            },
            schema_overrides={"symbol": pl.String},
        )
        for symbol, book in books.items()
        for entry_ts, entry_prices, exit_ts, exit_prices, fees in book.trades
    ]
    if not parts:
        return pl.DataFrame(schema=TRADE_SCHEMA)
    return pl.concat(parts).select(
        "symbol",
        _as_time("entry_ts"),
        "entry_price",
        _as_time("exit_ts"),
        "exit_price",
        pl.lit(qty).alias("qty"),
        "fees",
        (qty * (pl.col("exit_price") - pl.col("entry_price")) - pl.col("fees")).alias("pnl"),
    )


def _open_positions(books: dict[str, _SymbolBook], qty: float) -> pl.DataFrame:
    rows = [
        (
            symbol,
            book.entry.ts,
            book.entry.price,
            qty,
            book.last_close,
            qty * (book.last_close - book.entry.price) - book.entry.fee,
        )
        for symbol, book in books.items()
        if book.entry is not None
    ]
    frame = pl.DataFrame(rows, schema={**OPEN_POSITION_SCHEMA, "entry_ts": pl.Int64}, orient="row")
    return frame.with_columns(_as_time("entry_ts"))


def _equity(curve: list[pl.DataFrame], starting_cash: float) -> pl.DataFrame:
    if not curve:
        return pl.DataFrame(schema=EQUITY_SCHEMA)
    return pl.concat(curve).select(_as_time("ts_event"), (starting_cash + pl.col("delta").cum_sum()).alias("equity"))
