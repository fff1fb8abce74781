"""A user's own bars (Parquet or CSV) as rows of the warehouse's `bars` table.

Columns (names are case-insensitive; extra columns are ignored):

    symbol     the order form: 'SPY', 'BTC/USD'
    ts_event   the bar's start (alias: timestamp, time, date); ISO text, or a timestamp column.
               A time zone in the value is honoured; a naive value is taken as UTC.
    open, high, low, close, volume   numbers
    timeframe  optional: '1Min' (the default) or '1Day'
    trade_count, vwap                optional

A bar is known when it closes, so each row's ts_ingested is its start plus its timeframe:
a replay sees it no earlier than a live feed would have delivered it. The file's rows then go
through the same validation as any feed (bad rows are quarantined with their reason).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pyarrow
import pyarrow.parquet

from adapters.feed import FeedBatch, FeedError
from adapters.tables import TABLE_SCHEMAS

REQUIRED = ("symbol", "ts_event", "open", "high", "low", "close", "volume")
TIME_ALIASES = ("ts_event", "timestamp", "time", "date")
BAR_LENGTH = {"1Min": timedelta(minutes=1), "1Day": timedelta(days=1)}


class BarFileError(FeedError):
    """The file cannot be read as bars; the message says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__("bar-file", message)


def read_bar_file(path: Path) -> FeedBatch:
    frame = _read(path)
    columns = {name.lower(): name for name in frame.columns}
    time_column = next((columns[alias] for alias in TIME_ALIASES if alias in columns), None)
    renamed = frame.rename({original: lower for lower, original in columns.items()})
    if time_column is not None:
        renamed = renamed.rename({time_column.lower(): "ts_event"})
    missing = [name for name in REQUIRED if name not in renamed.columns]
    if missing:
        raise BarFileError(
            f"{path}: missing column(s) {', '.join(missing)}; bars need {', '.join(REQUIRED)} "
            f"(the time may be named {', '.join(TIME_ALIASES)})"
        )
    if "timeframe" not in renamed.columns:
        renamed = renamed.with_columns(pl.lit("1Min").alias("timeframe"))
    unknown = sorted(set(renamed.get_column("timeframe").drop_nulls().unique().to_list()) - set(BAR_LENGTH))
    if unknown:
        raise BarFileError(f"{path}: timeframe(s) {', '.join(map(str, unknown))}; use {', '.join(BAR_LENGTH)}")
    try:
        bars = renamed.select(
            pl.col("symbol").cast(pl.String),
            pl.col("timeframe").cast(pl.String),
            _utc(renamed.schema["ts_event"]),
            *(pl.col(name).cast(pl.Float64) for name in ("open", "high", "low", "close", "volume")),
            _optional(renamed, "trade_count", pl.Int64),
            _optional(renamed, "vwap", pl.Float64),
            pl.lit(f"file:{path.name}").alias("source"),
        )
    except pl.exceptions.PolarsError as error:
        raise BarFileError(f"{path}: a column does not hold what bars need: {str(error).splitlines()[0]}") from None
    length = pl.col("timeframe").replace_strict(BAR_LENGTH, return_dtype=pl.Duration("us"))
    bars = bars.with_columns((pl.col("ts_event") + length).alias("ts_ingested"))
    schema = pl.Schema(TABLE_SCHEMAS["bars"])
    return FeedBatch("bars", {"bars": bars.select(schema.names()).cast(schema)})


def _read(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise BarFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            # pyarrow, not polars, decodes the file: a damaged Parquet file can make polars'
            # Rust decoder panic or abort the whole process, where pyarrow raises ArrowInvalid.
            return pl.DataFrame(pyarrow.parquet.read_table(path))
        if suffix == ".csv":
            return pl.read_csv(path, try_parse_dates=True, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, pyarrow.ArrowException, OSError) as error:
        raise BarFileError(f"{path}: unreadable: {str(error).splitlines()[0]}") from None
    raise BarFileError(f"{path}: bars come as .parquet or .csv, not {suffix or 'a file without a suffix'}")


def _optional(frame: pl.DataFrame, name: str, dtype: type[pl.DataType]) -> pl.Expr:
    column = pl.col(name) if name in frame.columns else pl.lit(None)
    return column.cast(dtype).alias(name)


def _utc(dtype: pl.DataType) -> pl.Expr:
    column = pl.col("ts_event")
    if dtype == pl.String:
        column = column.str.to_datetime(time_zone="UTC", time_unit="us")
    elif isinstance(dtype, pl.Date):
        column = column.cast(pl.Datetime("us"))
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("ts_event")
    if dtype == pl.String:
        return column.alias("ts_event")
    return column.dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias("ts_event")
