"""A user's file of one feed table's history (Parquet or CSV) as rows of that table, chunk by chunk.

Every feed table but bars (adapters.bar_file reads those): FACT_TABLES. The columns are the
warehouse's (sql/schema/001_feeds.sql, adapters.tables), names case-insensitive, extra columns
ignored; the time of a row may come under any of table_file's TIME_ALIASES. A table's required
columns are those its validation requires (quality.rules.not_null_columns, which the caller
passes in: adapters do not import quality), except:

- `ts_ingested`, when the fact was known: when the file does not state it (the column, or a
  row's value), KNOWN_AT's rule for the table (below);
- provenance (`source`, `venue`, `exchange`): `file:<file name>` when absent (the column, or
  a row's value);
- headlines' `matched_tickers` and `matched_labs`: when absent, matched in the title as the
  narrative feed matches them (adapters.narrative.HeadlineMatcher).

Every other column of the table is optional (NULL when absent). Times are ISO text, dates or
timestamp columns (a naive one is UTC); a CSV list (headlines' matches) is its items joined by
`|` (an empty value: none); a boolean is true/false. A value that is not what its column needs
(words for a number) is a one-line error naming the file; a row with a time before 1900 or after
2200 is quarantined; every other row goes through the table's validation like the feed's own.

When a fact was known, if the file does not say (KNOWN_AT). Each rule makes a fact known no
earlier than it could have been, so a replay never looks ahead:

    funding_rates    at its funding time: the rate is fixed at that moment
    premium_index    at its time: a snapshot of the venue's mark and index prices
    open_interest    at its time: a snapshot
    margin_rates     at its time: the snapshot's
    margin_notices   at its notice time (ts_event, when the exchange announced it)
    github_releases  at its publication (ts_event is published_at)
    repo_stats       at its time: when the counts were observed
    headlines        at its time: its publication
    economic_events  SCHEDULED_LEAD (7 days) before its scheduled time: BLS, BEA and the Fed
                     publish their release calendars months ahead. An unscheduled event (an
                     emergency meeting) must state its ts_ingested.
    metal_premiums   at 16:00 London on its fixing's date (Beijing), or its time if later: the
                     premium needs that day's LBMA gold PM, whose auction ends after 15:00
    market_series    at the end of its UTC day: the series are daily gauges, and a value
                     dated by its day, or stamped at its close (VIX closes at 16:15 New York),
                     is out by then; a series FRED publishes (source `fred`, or one HYDRA reads
                     from FRED only: BAMLH0A0HYM2, USDCNY) at the end of the next day, as FRED
                     posts a day's value the day after
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path

import polars as pl

from adapters.feed import FeedBatch
from adapters.narrative import HeadlineMatcher
from adapters.table_file import CHUNK_ROWS, TIME_ALIASES, TableFile, as_utc, stated_ingestion, untimely
from adapters.tables import TABLE_SCHEMAS
from adapters.vol_credit import FRED_SERIES, VIX

SCHEDULED_LEAD = timedelta(days=7)
PROVENANCE = ("source", "venue", "exchange")
MATCHES = ("matched_tickers", "matched_labs")
LIST_SEPARATOR = "|"
# The LBMA gold PM auction starts at 15:00 London and is published once it clears.
LBMA_PM_PUBLISHED = time(16, 0)
# VIX is CBOE's, published at its close; these reach HYDRA only through FRED, a day late.
FRED_ONLY = tuple(sorted(spec.series for spec in FRED_SERIES.values() if spec.series != VIX))
DAY = timedelta(days=1)


def _at_event() -> pl.Expr:
    return pl.col("ts_event")


def _after_lbma_pm() -> pl.Expr:
    moment = pl.col("ts_event")
    fixing_day = moment.dt.convert_time_zone("Asia/Shanghai").dt.date()
    london = fixing_day.dt.combine(LBMA_PM_PUBLISHED).dt.replace_time_zone("Europe/London")
    return pl.max_horizontal(moment, london.dt.convert_time_zone("UTC"))


def _series_published() -> pl.Expr:
    day_ends = pl.col("ts_event").dt.truncate("1d") + DAY
    from_fred = (pl.col("source").str.to_lowercase() == "fred") | pl.col("series").is_in(FRED_ONLY)
    return pl.when(from_fred).then(day_ends + DAY).otherwise(day_ends)


# When a fact was known, for a file that does not state it (the module's docstring says why).
KNOWN_AT: dict[str, pl.Expr] = {
    "funding_rates": _at_event(),
    "open_interest": _at_event(),
    "premium_index": _at_event(),
    "economic_events": pl.col("ts_event") - SCHEDULED_LEAD,
    "margin_notices": _at_event(),
    "margin_rates": _at_event(),
    "github_releases": _at_event(),
    "repo_stats": _at_event(),
    "headlines": _at_event(),
    "market_series": _series_published(),
    "metal_premiums": _after_lbma_pm(),
}
FACT_TABLES = tuple(KNOWN_AT)


def feed_of(table: str) -> str:
    """Names a file of `table` in its errors, its ingestion run and its quarantined rows."""
    return f"{table}-file"


def required_columns(table: str, not_null: Sequence[str]) -> tuple[str, ...]:
    """The columns a file of `table` must have (ts_event under any of TIME_ALIASES): those its
    rows must not leave empty (`not_null`), but the ones this reader fills in."""
    filled = {"ts_ingested", *PROVENANCE, *(MATCHES if table == "headlines" else ())}
    return tuple(column for column in not_null if column not in filled)


@dataclass(frozen=True)
class FactFile:
    """A file of one feed table's rows, its columns checked: ready to be read in chunks."""

    file: TableFile
    table: str
    matcher: HeadlineMatcher  # what headlines without their matches are matched with

    @classmethod
    def open(cls, path: Path, table: str, matcher: HeadlineMatcher, not_null: Sequence[str]) -> FactFile:
        """Refused (TableFileError): an unreadable file, or one without a required column (of the
        table's `not_null` columns, those this reader does not fill in)."""
        file = TableFile.open(path, feed_of(table))
        required = required_columns(table, not_null)
        missing = [name for name in required if name != "ts_event" and not file.has(name)]
        if file.time_column is None:
            missing.insert(0, "ts_event")
        if missing:
            raise file.error(
                f"missing column(s) {', '.join(missing)}; {table} needs {', '.join(required)} "
                f"(the time may be named {', '.join(TIME_ALIASES)})"
            )
        return cls(file, table, matcher)

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def feed(self) -> str:
        return self.file.feed

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[FeedBatch]:
        """The file's rows as the table's, a chunk of about `rows` rows at a time."""
        time_column = self.file.time_column
        assert time_column is not None  # open() refuses a file without one
        columns = [name for name in self.file.names if name in TABLE_SCHEMAS[self.table] and name != "ts_event"]
        for chunk in self.file.chunks([*columns, time_column], rows):
            yield self._facts(chunk)

    def _facts(self, chunk: pl.DataFrame) -> FeedBatch:
        schema = pl.Schema(TABLE_SCHEMAS[self.table])
        try:
            shaped = chunk.select(
                *(self._column(chunk, name, dtype) for name, dtype in schema.items() if name != "ts_ingested"),
                stated_ingestion(chunk),
            ).with_columns(self._matches(chunk))
        except pl.exceptions.PolarsError as error:
            raise self.file.error(
                f"a column does not hold what {self.table} needs: {(str(error).splitlines() or ['?'])[0]}"
            ) from None
        timely, rejected = untimely(shaped, f"{self.table}: ts_event")
        known = pl.coalesce("ts_ingested", KNOWN_AT[self.table]).alias("ts_ingested")
        facts = timely.with_columns(known).select(schema.names()).cast(schema)
        return FeedBatch(self.feed, {self.table: facts}, rejected)

    def _column(self, chunk: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
        if name == "ts_event":
            return pl.col(name)
        stated = _typed(name, chunk.schema[name], dtype) if name in chunk.columns else pl.lit(None, dtype)
        if name in PROVENANCE:
            return pl.coalesce(stated, pl.lit(f"file:{self.path.name}")).alias(name)
        return stated.alias(name)

    def _matches(self, chunk: pl.DataFrame) -> list[pl.Expr]:
        """Headlines' matches the file does not state, found in the title as the feed finds them."""
        if self.table != "headlines":
            return []
        matchers = {"matched_tickers": self.matcher.tickers_in, "matched_labs": self.matcher.labs_in}
        return [
            pl.col("title").map_elements(match, return_dtype=pl.List(pl.String)).alias(name)
            for name, match in matchers.items()
            if name not in chunk.columns
        ]


def _typed(name: str, found: pl.DataType, wanted: pl.DataType) -> pl.Expr:
    """Column `name`, read as `found`, as the table's `wanted` type; a value that is not one
    raises (polars' strict cast)."""
    column = pl.col(name)
    if isinstance(wanted, pl.Datetime):
        return as_utc(name, found)
    if found == pl.String and isinstance(wanted, pl.Date):
        return column.str.to_date().alias(name)
    if found == pl.String and isinstance(wanted, pl.Boolean):
        return column.str.to_lowercase().replace_strict({"true": True, "false": False}, return_dtype=pl.Boolean)
    if found == pl.String and isinstance(wanted, pl.List):
        items = column.fill_null("").str.split(LIST_SEPARATOR)  # an empty CSV value: no items
        return items.list.eval(pl.element().filter(pl.element() != "")).alias(name)
    return column.cast(wanted)
