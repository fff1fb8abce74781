"""A user's own bars (Parquet or CSV) as rows of the warehouse's `bars` table, chunk by chunk.

Columns (names are case-insensitive; extra columns are ignored):

    symbol     the order form: 'SPY', 'BTC/USD'
    ts_event   the bar's start (alias: timestamp, time, date); ISO text, a date, or a timestamp
               column. A time zone in the value is honoured; a naive value is taken as UTC.
    close      a number
    open, high, low   optional: a missing column is the close (a file of closes, such as daily
               index levels, is bars that opened, peaked and bottomed at their close)
    volume     optional: a missing column, or an empty value, is NULL: unknown, never zero
    timeframe  optional: 1Min, 5Min, 15Min, 30Min, 1Hour or 1Day; inferred when absent
    trade_count, vwap   optional
    ts_ingested  optional: when the bar was learned (never taken as earlier than its close)

The timeframe, when the file does not state it, comes from the spacing of each symbol's bars:
the most common positive gap between consecutive bars (in file order) within one UTC day,
when most gaps fall within a day, must be a timeframe's length; bars one a day (most gaps
across days) are daily. A stated timeframe must agree: bars closer together than their stated
length would overlap. Either disagreement is a one-line error naming the symbol, the
timeframe and the spacing found; gaps longer than the timeframe (nights, holidays, missing
minutes) are normal.

A bar is known when it closes, so a row's ts_ingested, unless the file states a later one, is
core.calendar's bar_close: an intraday bar its length after it starts, a daily equity bar at its
NYSE session's close (early on a half day), a daily crypto bar a day after it starts. A daily
equity bar on a day without a session is quarantined with that reason. The file's rows then go
through the same validation as any feed (bad rows are quarantined with their reason).

A file without daily bars for a symbol gets them, aggregated from its intraday bars per NYSE
session (`daily_bars_of`): live trading reads Alpaca's daily bars beside the minute bars, and
windows of sessions (the regime's 252-session drawdown) need them.

The file is read twice, a chunk at a time: `BarFile.survey` reads only the symbol, time,
timeframe and close columns (the time range, each symbol's timeframe, whether any row is
usable), then `BarFile.chunks` shapes every column into bars, so memory stays bounded by a
chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from adapters.feed import FeedBatch, Rejected
from adapters.table_file import (
    CHUNK_ROWS,
    TIME_ALIASES,
    TableFile,
    TableFileError,
    in_time_bounds,
    stated_ingestion,
    untimely,
)
from adapters.tables import TABLE_SCHEMAS
from core.calendar import NO_SESSION, NOT_A_SESSION, MarketCalendar, Timeframe, nyse_calendar
from core.config import CRYPTO_QUOTE
from core.timestamps import DAY_MICROS

FEED = "bar-file"
REQUIRED = ("symbol", "close")
FILLED_WITH_CLOSE = ("open", "high", "low")
OPTIONAL_NUMBERS = {"volume": pl.Float64, "trade_count": pl.Int64, "vwap": pl.Float64}
TIMEFRAMES = tuple(timeframe.value for timeframe in Timeframe)
CALENDAR_MARGIN = timedelta(days=7)
BARS_SCHEMA = pl.Schema(TABLE_SCHEMAS["bars"])


@dataclass(frozen=True)
class BarFile:
    """A bar file and what a first pass over it found: enough to check a window before loading."""

    file: TableFile
    time_column: str  # the file's name for the bars' start, lower-cased
    rows: int
    first: datetime  # the earliest bar start, UTC
    last: datetime  # the latest bar start, UTC
    # The timeframe inferred for each symbol; None when the file states its timeframes.
    inferred: dict[str, Timeframe] | None
    timeframes: frozenset[Timeframe]  # every timeframe the file holds, stated or inferred

    @classmethod
    def survey(cls, path: Path, rows: int = CHUNK_ROWS) -> BarFile:
        """Read the file's symbols, times, timeframes and closes; refuse what cannot be bars.

        Refused (TableFileError): a missing required column, an unknown timeframe, spacing that
        is no timeframe or contradicts the stated one, and a file without a single row with a
        symbol, a time and a positive close (nothing to load, found without loading it).
        """
        file = TableFile.open(path, FEED)
        time_column = file.time_column
        missing = [name for name in REQUIRED if not file.has(name)] + ([] if time_column else ["ts_event"])
        if missing or time_column is None:
            raise file.error(
                f"missing column(s) {', '.join(missing)}; bars need symbol, ts_event and close "
                f"(the time may be named {', '.join(TIME_ALIASES)}; open, high, low, volume are optional)"
            )
        stated = file.has("timeframe")
        tally = _Tally(stated)
        columns = ["symbol", time_column, "close", *(["timeframe"] if stated else [])]
        for chunk in file.chunks(columns, rows):
            try:
                tally.add(chunk.with_columns(pl.col("symbol").cast(pl.String), pl.col("close").cast(pl.Float64)))
            except pl.exceptions.PolarsError as error:
                raise _not_bars(file, error) from None
        if stated and (unknown := sorted(tally.timeframes - set(TIMEFRAMES))):
            raise file.error(f"timeframe(s) {', '.join(unknown)}; use {', '.join(TIMEFRAMES)}")
        if tally.usable == 0 or tally.first is None or tally.last is None:
            raise file.error(
                f"none of its {tally.rows} rows has a symbol, a time and a positive close: nothing to load"
            )
        spacings = sorted(tally.spacings().items())
        for (symbol, timeframe), spacing in spacings if stated else ():
            _check_stated(file, symbol, Timeframe(timeframe), spacing)
        inferred = None if stated else {symbol: _inferred(file, symbol, spacing) for (symbol, _), spacing in spacings}
        timeframes = (
            frozenset(inferred.values()) if inferred is not None else frozenset(map(Timeframe, tally.timeframes))
        )
        return cls(file, time_column, tally.rows, tally.first, tally.last, inferred, timeframes)

    @property
    def finest(self) -> Timeframe:
        """The shortest of the file's timeframes: the bars a backtest of it decides on."""
        return min(self.timeframes, key=lambda timeframe: timeframe.length)

    @property
    def path(self) -> Path:
        return self.file.path

    def calendar(self) -> MarketCalendar:
        """The exchange calendar over the file's days (nyse_calendar caches it per span)."""
        return nyse_calendar((self.first - CALENDAR_MARGIN).date(), (self.last + CALENDAR_MARGIN).date())

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[FeedBatch]:
        """The file's bars, a chunk of about `rows` rows at a time, each row known at its close."""
        calendar = self.calendar()
        file = self.file
        optional = (*FILLED_WITH_CLOSE, *OPTIONAL_NUMBERS, "timeframe", "ts_ingested")
        columns = [name for name in (*REQUIRED, *optional) if file.has(name)]
        for chunk in file.chunks([*columns, self.time_column], rows):
            yield self._bars(chunk, calendar)

    def _bars(self, chunk: pl.DataFrame, calendar: MarketCalendar) -> FeedBatch:
        try:
            shaped = chunk.select(
                pl.col("symbol").cast(pl.String),
                self._timeframe(),
                pl.col("ts_event"),
                *(self._price(name) for name in (*FILLED_WITH_CLOSE, "close")),
                *(_optional(chunk, name, dtype) for name, dtype in OPTIONAL_NUMBERS.items()),
                pl.lit(f"file:{self.path.name}").alias("source"),
                stated_ingestion(chunk),
            )
        except pl.exceptions.PolarsError as error:
            raise _not_bars(self.file, error) from None
        timely, rejected = untimely(shaped, "bars: a bar's start")
        closes, no_session = _closes(timely, calendar)
        # A stated ts_ingested is when the bar was learned, but never before the bar closed.
        bars = timely.with_columns(pl.max_horizontal("ts_ingested", pl.lit(closes)).alias("ts_ingested"))
        rejected += [
            Rejected.of(
                row, f"bars: {row['symbol']}: a daily bar on {row['ts_event']:%Y-%m-%d}, a day without an NYSE session"
            )
            for row in bars.filter(no_session).iter_rows(named=True)
        ]
        return FeedBatch(
            FEED, {"bars": bars.filter(~no_session).select(BARS_SCHEMA.names()).cast(BARS_SCHEMA)}, rejected
        )

    def _timeframe(self) -> pl.Expr:
        if self.inferred is None:
            return pl.col("timeframe").cast(pl.String)
        named = {symbol: timeframe.value for symbol, timeframe in self.inferred.items()}
        return (
            pl.col("symbol")
            .cast(pl.String)
            .replace_strict(named, default=None, return_dtype=pl.String)
            .alias("timeframe")
        )

    def _price(self, name: str) -> pl.Expr:
        return (pl.col(name) if self.file.has(name) else pl.col("close")).cast(pl.Float64).alias(name)


def _not_bars(file: TableFile, error: pl.exceptions.PolarsError) -> TableFileError:
    return file.error(f"a column does not hold what bars need: {(str(error).splitlines() or ['?'])[0]}")


def _optional(frame: pl.DataFrame, name: str, dtype: type[pl.DataType]) -> pl.Expr:
    column = pl.col(name) if name in frame.columns else pl.lit(None)
    return column.cast(dtype).alias(name)


def _closes(bars: pl.DataFrame, calendar: MarketCalendar) -> tuple[pl.Series, pl.Series]:
    """Each bar's close, when it is known (MarketCalendar.bar_closes, a symbol and timeframe at
    a time), and whether it has none because it is a daily equity bar on a day without an NYSE
    session. A bar without a symbol, a timeframe or a time gets neither: it fails validation."""
    closes = np.full(bars.height, NO_SESSION, dtype=np.int64)
    known = np.zeros(bars.height, dtype=bool)
    keyed = bars.select(
        pl.int_range(pl.len()).alias("row"), "symbol", "timeframe", pl.col("ts_event").dt.epoch("us").alias("start")
    ).filter(pl.col("timeframe").is_in(TIMEFRAMES))
    for (symbol, timeframe), group in keyed.drop_nulls().group_by("symbol", "timeframe"):
        rows = group.get_column("row").to_numpy()
        closes[rows] = calendar.bar_closes(str(symbol), Timeframe(timeframe), group.get_column("start").to_numpy())
        known[rows] = True
    no_session = known & (closes == NO_SESSION)
    times = pl.Series(closes).cast(pl.Datetime("us", "UTC"))
    return times.set(pl.Series(~known | no_session), None).alias("ts_ingested"), pl.Series(no_session)


@dataclass(frozen=True)
class Spacing:
    """How far apart one symbol's consecutive bars are."""

    within_day: dict[timedelta, int]  # positive gaps between bars of one UTC day, and how often
    across_days: int  # positive gaps from one day to another

    @property
    def intraday(self) -> bool:
        """Most gaps fall within a day: several bars a day."""
        within = sum(self.within_day.values())
        return within > 0 and within >= self.across_days

    @property
    def most_common(self) -> timedelta:
        """The most common gap within a day (the shorter one of a tie)."""
        return min(self.within_day, key=lambda gap: (-self.within_day[gap], gap))


class _Tally:
    """The survey's tally over the chunks: rows, usable rows, time range, each group's gaps.

    A group is a symbol, or a symbol and its stated timeframe. Each chunk's gaps start from
    the last bar of the group in the chunks before it, so a chunk boundary changes nothing.
    """

    def __init__(self, stated: bool) -> None:
        self.group = ["symbol", "timeframe"] if stated else ["symbol"]
        self.rows = self.usable = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.timeframes: set[str] = set()
        self._last_bars: pl.DataFrame | None = None
        self._gaps: pl.DataFrame | None = None

    def add(self, chunk: pl.DataFrame) -> None:
        self.rows += chunk.height
        usable = chunk.filter(pl.col("symbol").is_not_null() & pl.col("ts_event").is_not_null() & in_time_bounds())
        self.usable += usable.filter(pl.col("close").is_finite() & (pl.col("close") > 0)).height
        if "timeframe" in usable.columns:
            usable = usable.with_columns(pl.col("timeframe").cast(pl.String))
            self.timeframes |= set(usable.get_column("timeframe").drop_nulls().unique().to_list())
            usable = usable.filter(pl.col("timeframe").is_not_null())
        if usable.is_empty():
            return
        first, last = usable.select(
            pl.col("ts_event").min().alias("first"), pl.col("ts_event").max().alias("last")
        ).row(0)
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)
        bars = usable.select(*self.group, "ts_event")
        stacked = bars if self._last_bars is None else pl.concat([self._last_bars, bars])
        previous = pl.col("ts_event").shift(1).over(self.group)
        gaps = (
            stacked.select(
                *self.group,
                (pl.col("ts_event") - previous).alias("gap"),
                (pl.col("ts_event").dt.date() == previous.dt.date()).alias("within_day"),
            )
            .filter(pl.col("gap") > timedelta(0))
            .group_by(*self.group, "within_day", "gap")
            .len()
        )
        tallied = gaps if self._gaps is None else pl.concat([self._gaps, gaps])
        self._gaps = tallied.group_by(*self.group, "within_day", "gap").agg(pl.col("len").sum())
        self._last_bars = stacked.group_by(self.group, maintain_order=True).last()

    def spacings(self) -> dict[tuple[str, str], Spacing]:
        """Each group's spacing: (symbol, stated timeframe or '') -> Spacing."""
        within: dict[tuple[str, str], dict[timedelta, int]] = {}
        across: dict[tuple[str, str], int] = {}
        for symbols in [] if self._last_bars is None else self._last_bars.select(self.group).rows():
            within[_key(symbols)], across[_key(symbols)] = {}, 0
        for *group, within_day, gap, count in [] if self._gaps is None else self._gaps.rows():
            if within_day:
                within[_key(group)][gap] = count
            else:
                across[_key(group)] += count
        return {key: Spacing(within[key], across[key]) for key in within}


def _key(group: Sequence[str]) -> tuple[str, str]:
    """A symbol and its stated timeframe ('' when the file states none)."""
    return (group[0], group[1] if len(group) > 1 else "")


def _inferred(file: TableFile, symbol: str, spacing: Spacing) -> Timeframe:
    if not spacing.intraday:
        return Timeframe.DAY_1
    timeframe = Timeframe.of_length(spacing.most_common)
    if timeframe is None:
        raise file.error(
            f"{symbol}: its bars are most often {_duration(spacing.most_common)} apart within a day, which is no "
            f"timeframe ({', '.join(TIMEFRAMES)}); state it in a timeframe column, or resample the bars"
        )
    return timeframe


def _check_stated(file: TableFile, symbol: str, timeframe: Timeframe, spacing: Spacing) -> None:
    if spacing.intraday and spacing.most_common < timeframe.length:
        raise file.error(
            f"{symbol}: stated {timeframe.value}, but its bars are most often {_duration(spacing.most_common)} "
            f"apart: {timeframe.value} bars so close together would overlap (fix or drop the timeframe column)"
        )


def _duration(gap: timedelta) -> str:
    seconds = gap.total_seconds()
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


def daily_bars_of(bars: pl.DataFrame, calendar: MarketCalendar, source: str) -> pl.DataFrame:
    """One daily bar per symbol and session, aggregated from intraday bars in time order per symbol:
    what Alpaca serves beside minute bars, for data that has only intraday bars (so windows of
    sessions, the regime's, have their history).

    A session's bars are those inside it (pre- and post-market bars belong to none); crypto's
    session is the UTC day. The daily bar opens at the first bar's open and closes at the last
    bar's close, with the session's high and low, its volume summed (unknown if any bar's is),
    stamped at midnight UTC of its date (as a file of dates is) and known at the session's close.
    """
    if bars.is_empty():
        return pl.DataFrame(schema=BARS_SCHEMA)
    starts = bars.get_column("ts_event").dt.epoch("us").to_numpy()
    crypto = bars.get_column("symbol").str.ends_with(CRYPTO_QUOTE).to_numpy()
    sessions = calendar.equities
    index = sessions.containing(starts)
    equity_day = sessions.days[index].astype("datetime64[D]").astype(np.int64)
    day = np.where(crypto, starts // DAY_MICROS, np.where(index != NOT_A_SESSION, equity_day, -1))
    daily = (
        bars.with_columns(pl.Series("day", day))
        .filter(pl.col("day") >= 0)
        .group_by("symbol", "day", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.when(pl.col("volume").null_count() == 0).then(pl.col("volume").sum()).alias("volume"),
        )
        .with_columns(
            pl.lit(Timeframe.DAY_1.value).alias("timeframe"),
            (pl.col("day") * DAY_MICROS).cast(pl.Datetime("us", "UTC")).alias("ts_event"),
            pl.lit(None, pl.Int64).alias("trade_count"),
            pl.lit(None, pl.Float64).alias("vwap"),
            pl.lit(source).alias("source"),
        )
    )
    known, _ = _closes(daily, calendar)
    return daily.with_columns(known).select(BARS_SCHEMA.names()).cast(BARS_SCHEMA)
