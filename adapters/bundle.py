"""What `hydra backtest --data PATH` replays: a bar file, or a folder with one file per table.

A folder (a data bundle) holds `<table>.csv` or `<table>.parquet` for `bars` (required: every
backtest decides on bars) and for any of the other feed tables (adapters.fact_file's
FACT_TABLES); file names are matched case-insensitively, hidden files (a leading dot) are left
alone. A bar file alone is a bundle of bars.

Refused before anything loads (TableFileError, one line): a path that does not exist, an entry
of the folder that is no table's file (the message names the accepted ones), two files of one
table, a folder without bars, and any file its reader refuses (adapters.bar_file,
adapters.fact_file): every file's columns are checked, then the bars are surveyed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.bar_file import FEED as BAR_FEED
from adapters.bar_file import BarFile
from adapters.fact_file import FACT_TABLES, FactFile
from adapters.feed import FeedBatch
from adapters.narrative import HeadlineMatcher
from adapters.table_file import SUFFIXES, TableFileError

FEED = "data-folder"
TABLES = ("bars", *FACT_TABLES)


@dataclass(frozen=True)
class TableSource:
    """One file of a bundle, and how its ingestion run and quarantined rows are named."""

    table: str
    path: Path
    feed: str


@dataclass(frozen=True)
class DataBundle:
    path: Path  # the folder, or the bar file
    bars: BarFile  # surveyed: its range and timeframes are known
    facts: tuple[FactFile, ...]  # the other tables' files, in FACT_TABLES' order
    watchlist: tuple[str, ...]  # what headlines without their matches are matched against

    @classmethod
    def open(cls, path: Path, watchlist: Sequence[str], not_null: Callable[[str], Sequence[str]]) -> DataBundle:
        """`not_null(table)`: the columns a row of the table must have (quality.rules.not_null_columns)."""
        if not path.is_dir():
            return cls(path, BarFile.survey(path), (), tuple(watchlist))
        files = _table_files(path)
        matcher = HeadlineMatcher.for_watchlist(watchlist)
        facts = tuple(
            FactFile.open(files[table], table, matcher, not_null(table)) for table in FACT_TABLES if table in files
        )
        return cls(path, BarFile.survey(files["bars"]), facts, tuple(watchlist))

    @property
    def sources(self) -> tuple[TableSource, ...]:
        """Every file, bars first."""
        bars = TableSource("bars", self.bars.path, BAR_FEED)
        return (bars, *(TableSource(fact.table, fact.path, fact.feed) for fact in self.facts))

    @property
    def load_settings(self) -> str:
        """What the load depends on besides the files' bytes: the watchlist, when headlines are matched."""
        return ",".join(self.watchlist) if any(fact.table == "headlines" for fact in self.facts) else ""

    def chunks(self) -> Iterator[tuple[TableSource, Iterator[FeedBatch]]]:
        """Each file with its rows, a chunk at a time: bars first."""
        bars, *facts = self.sources
        yield bars, self.bars.chunks()
        for source, fact in zip(facts, self.facts, strict=True):
            yield source, fact.chunks()


def _table_files(folder: Path) -> dict[str, Path]:
    accepted = f"{' or '.join(f'<table>{suffix}' for suffix in SUFFIXES)}, a table one of {', '.join(TABLES)}"
    files: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        table = entry.stem.lower()
        if not entry.is_file() or entry.suffix.lower() not in SUFFIXES or table not in TABLES:
            raise TableFileError(FEED, f"{entry}: not a table's file; a data folder holds {accepted}")
        if table in files:
            raise TableFileError(
                FEED, f"{folder}: two files of {table}, {files[table].name} and {entry.name}: keep one"
            )
        files[table] = entry
    if "bars" not in files:
        raise TableFileError(FEED, f"{folder}: no bars file (bars.csv or bars.parquet); every backtest decides on bars")
    return files
