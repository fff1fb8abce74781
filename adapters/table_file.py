"""A user's data file (Parquet or CSV) read in chunks: what every reader of such files shares.

A file is read a chunk of rows at a time, so memory stays bounded by a chunk however big the
file is (a Parquet file by a row group at most: pyarrow decodes one at a time). Column names
are matched case-insensitively and handed out lower-cased; the time of a row may come under
any of TIME_ALIASES and is handed out as `ts_event`, in UTC.

Parquet is decoded by pyarrow, not polars: a damaged file can make polars' Rust decoder panic
or abort the whole process, where pyarrow raises ArrowInvalid. A CSV file's column types are
inferred once, from its first INFER_ROWS rows, and hold for every chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow
import pyarrow.parquet

from adapters.feed import FeedError, Rejected

TIME_ALIASES = ("ts_event", "timestamp", "time", "date")
CHUNK_ROWS = 100_000
INFER_ROWS = 10_000
SUFFIXES = (".parquet", ".csv")
# What reading a damaged or mistyped file raises: ValueError covers text that is not UTF-8.
READ_ERRORS = (pl.exceptions.PolarsError, pyarrow.ArrowException, OSError, ValueError)
# Facts happen within these: a time outside them is garbage (a corrupt or mistyped value), and
# exchange_calendars' sessions (pandas' nanosecond timestamps) end in 2262. Such a row is
# quarantined before validation, and left out of a survey's range.
TIME_BOUNDS = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


class TableFileError(FeedError):
    """The file cannot be read as its table; the message names the file and what to fix."""


@dataclass(frozen=True)
class TableFile:
    path: Path
    feed: str  # names the kind of file in its errors: 'bar-file'
    names: dict[str, str]  # lower-cased name -> the file's own
    schema: dict[str, pl.DataType]  # lower-cased name -> its type as read

    @classmethod
    def open(cls, path: Path, feed: str) -> TableFile:
        """The file's columns, read from its header (CSV) or footer (Parquet), not its rows."""
        if not path.is_file():
            raise TableFileError(feed, f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise TableFileError(
                feed, f"{path}: data comes as {' or '.join(SUFFIXES)}, not {suffix or 'a file without a suffix'}"
            )
        try:
            if suffix == ".parquet":
                arrow = pyarrow.parquet.read_schema(path)
                schema = dict(pl.from_arrow(arrow.empty_table()).schema)  # type: ignore[union-attr]
            else:
                schema = dict(_scan_csv(path).collect_schema())
        except READ_ERRORS as error:
            raise TableFileError(feed, f"{path}: unreadable: {_first_line(error)}") from None
        names = {name.lower(): name for name in reversed(schema)}  # the first of names equal but for case
        return cls(path, feed, names, {lower: schema[name] for lower, name in names.items()})

    def has(self, name: str) -> bool:
        return name in self.names

    @property
    def time_column(self) -> str | None:
        """The lower-cased name of the column that holds each row's time."""
        return next((alias for alias in TIME_ALIASES if alias in self.names), None)

    def error(self, message: str) -> TableFileError:
        return TableFileError(self.feed, f"{self.path}: {message}")

    def chunks(self, columns: Sequence[str], rows: int = CHUNK_ROWS) -> Iterator[pl.DataFrame]:
        """The file's `columns` (lower-cased names it has), a chunk of about `rows` rows at a time.

        The time column comes as `ts_event`, UTC; a time zone in the value is honoured, a naive
        time (or a date) is taken as UTC. A file that turns out unreadable, or a time that is
        not one, is a TableFileError.
        """
        wanted = [self.names[name] for name in columns]
        renames = {self.names[name]: "ts_event" if name == self.time_column else name for name in columns}
        time = self.time_column
        convert = [as_utc("ts_event", self.schema[time])] if time is not None and time in columns else []
        try:
            for chunk in self._raw_chunks(wanted, rows):
                yield chunk.rename(renames).with_columns(convert)
        except READ_ERRORS as error:
            raise self.error(f"unreadable or not what its columns need: {_first_line(error)}") from None

    def _raw_chunks(self, columns: list[str], rows: int) -> Iterator[pl.DataFrame]:
        if self.path.suffix.lower() == ".parquet":
            parquet = pyarrow.parquet.ParquetFile(self.path)
            for batch in parquet.iter_batches(batch_size=rows, columns=columns):
                # Decoding does not check text is UTF-8: a damaged file's invalid text would
                # reach polars, whose conversion to Python then panics.
                batch.validate(full=True)
                yield pl.DataFrame(pl.from_arrow(batch))
        else:
            yield from _scan_csv(self.path).select(columns).collect_batches(chunk_size=rows)


def in_time_bounds() -> pl.Expr:
    """A row whose ts_event is missing (it fails validation) or within TIME_BOUNDS."""
    time = pl.col("ts_event")
    return time.is_null() | time.is_between(*TIME_BOUNDS, closed="left")


def untimely(rows: pl.DataFrame, what: str) -> tuple[pl.DataFrame, list[Rejected]]:
    """`rows` within TIME_BOUNDS, and the others as quarantine items: '<what> is not between ...'."""
    # The time as text: beyond Python's years, a polars time cannot become a datetime.
    outside = rows.filter(~in_time_bounds()).with_columns(pl.col("ts_event").cast(pl.String))
    bounds = " and ".join(f"{bound:%Y-%m-%d}" for bound in TIME_BOUNDS)
    rejected = [Rejected.of(row, f"{what} is not between {bounds}") for row in outside.iter_rows(named=True)]
    return rows.filter(in_time_bounds()), rejected


def stated_ingestion(chunk: pl.DataFrame) -> pl.Expr:
    """The chunk's own ts_ingested (UTC), or NULL where it states none: when it was known is then
    the reader's rule."""
    if "ts_ingested" not in chunk.columns:
        return pl.lit(None, pl.Datetime("us", "UTC")).alias("ts_ingested")
    return as_utc("ts_ingested", chunk.schema["ts_ingested"])


def as_utc(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column `name` (text, a date or a timestamp) as a UTC timestamp in microseconds."""
    column = pl.col(name)
    if dtype == pl.String:
        return column.str.to_datetime(time_zone="UTC", time_unit="us").alias(name)
    if isinstance(dtype, pl.Date):
        column = column.cast(pl.Datetime("us"))
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias(name)
    return column.dt.replace_time_zone("UTC").dt.cast_time_unit("us").alias(name)


def _scan_csv(path: Path) -> pl.LazyFrame:
    return pl.scan_csv(path, try_parse_dates=True, infer_schema_length=INFER_ROWS)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
