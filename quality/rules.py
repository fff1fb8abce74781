"""What valid rows look like, per warehouse table, as plain data.

Kept free of Great Expectations (whose import costs seconds) so anything can read the rules;
quality.validate turns them into GX expectations. The natural-key uniqueness check is not
listed here: its columns are the table's PRIMARY KEY, passed in by the caller.

Every numeric column of every table has a Between rule with both bounds (tests/test_quality.py
holds that): a value must be finite and within a documented sanity bound, far beyond any real
value, so only garbage, unit errors and overflows (a JSON `1e999` parses to infinity) fail it.
NaN is a missing value (quality.validate stores it as NULL). Every column the warehouse
declares NOT NULL but ts_ingested (which the loader sets) has a NotNull rule, which
tests/test_quality.py holds too: a row missing one is quarantined, never left to fail its
table's insert. Identifiers (symbols, series ids, product codes, repositories) must match the
pattern of the ones their source really uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.calendar import Timeframe


@dataclass(frozen=True)
class NotNull:
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Between:
    column: str
    low: float | None = None
    high: float | None = None
    strict_low: bool = False


@dataclass(frozen=True)
class Matches:
    """Every present value matches `pattern` whole (a Python regex, anchored with \\A and \\Z)."""

    column: str
    pattern: str


@dataclass(frozen=True)
class AtLeast:
    """column_a >= column_b on every row where both are present."""

    column_a: str
    column_b: str


@dataclass(frozen=True)
class InSet:
    column: str
    values: frozenset[str]


@dataclass(frozen=True)
class IncreasingWithin:
    """Strictly increasing `column` within each group, in the order the rows arrived."""

    column: str
    group_by: tuple[str, ...]


@dataclass(frozen=True)
class NotAfterIngestion:
    """A fact cannot be learned before it happened (beyond a clock-skew tolerance)."""

    column: str
    tolerance: timedelta


Rule = NotNull | Between | Matches | AtLeast | InSet | IncreasingWithin | NotAfterIngestion

PRICE_COLUMNS = ("open", "high", "low", "close")
SKEW = timedelta(minutes=2)
# Funding is capped by Binance at a few percent per interval; beyond 5% is a unit error.
MAX_ABS_FUNDING = 0.05
# A price in its quote currency: Berkshire A trades near 1e6 USD, bitcoin near 1.5e7 JPY.
MAX_PRICE = 1e9
# Volumes, open interest and counts of units: a busy day of SHIB/USD trades about 1e13 coins.
MAX_QUANTITY = 1e15
# Open interest valued in USD: all of bitcoin's futures together hold about 1e11.
MAX_NOTIONAL = 1e15
# A CME margin per contract in USD (gold's is about 1e4), or a percentage of notional.
MAX_MARGIN = 1e7
# Stars, forks, issues and watchers of one GitHub repository (the most starred has ~5e5).
MAX_REPO_COUNT = 1e9
# GitHub's release ids are positive 64-bit integers.
MAX_RELEASE_ID = 2.0**63 - 1
# Gold and silver in CNY per gram (gold ~ 7e2) and USD per ounce (gold ~ 3e3).
MAX_CNY_PER_GRAM = 1e5
MAX_USD_PER_OZ = 1e6

# Identifiers as their sources write them. Bars: Alpaca's order form, an equity or ETF ticker
# ('SPY', 'BRK.B') or a crypto pair ('BTC/USD'). Binance USD-M: 'BTCUSDT', '1000PEPEUSDT', a
# dated contract 'BTCUSDT_250627'. CME clearing codes: 'GC', 'SI', 'MGC'. Market series: FRED
# series ids and HYDRA's own names ('VIX', 'BAMLH0A0HYM2', 'USDCNY'). GitHub: 'owner/repo'.
BAR_SYMBOL = r"\A[A-Z][A-Z0-9.]{0,9}(?:/[A-Z]{3,4})?\Z"
BINANCE_SYMBOL = r"\A[A-Z0-9]{2,20}(?:_[0-9]{6})?\Z"
CME_CODE = r"\A[A-Z0-9]{1,6}\Z"
SERIES_ID = r"\A[A-Z0-9][A-Z0-9_]{0,29}\Z"
GITHUB_REPO = r"\A[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}\Z"

RULES: dict[str, tuple[Rule, ...]] = {
    "bars": (
        # Volume may be NULL: unknown, for sources that have none (migration 010).
        NotNull(("symbol", "timeframe", "ts_event", *PRICE_COLUMNS, "source")),
        Matches("symbol", BAR_SYMBOL),
        *(Between(column, low=0, high=MAX_PRICE, strict_low=True) for column in PRICE_COLUMNS),
        Between("volume", low=0, high=MAX_QUANTITY),
        Between("trade_count", low=0, high=MAX_QUANTITY),
        Between("vwap", low=0, high=MAX_PRICE, strict_low=True),
        AtLeast("high", "low"),
        AtLeast("high", "open"),
        AtLeast("high", "close"),
        AtLeast("open", "low"),
        AtLeast("close", "low"),
        InSet("timeframe", frozenset(timeframe.value for timeframe in Timeframe)),
        IncreasingWithin("ts_event", ("symbol", "timeframe")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "funding_rates": (
        NotNull(("venue", "symbol", "ts_event", "funding_rate")),
        Matches("symbol", BINANCE_SYMBOL),
        Between("funding_rate", low=-MAX_ABS_FUNDING, high=MAX_ABS_FUNDING),
        Between("mark_price", low=0, high=MAX_PRICE, strict_low=True),
        IncreasingWithin("ts_event", ("venue", "symbol")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "premium_index": (
        NotNull(("venue", "symbol", "ts_event", "mark_price")),
        Matches("symbol", BINANCE_SYMBOL),
        Between("mark_price", low=0, high=MAX_PRICE, strict_low=True),
        Between("index_price", low=0, high=MAX_PRICE, strict_low=True),
        Between("estimated_settle_price", low=0, high=MAX_PRICE, strict_low=True),
        Between("last_funding_rate", low=-MAX_ABS_FUNDING, high=MAX_ABS_FUNDING),
        Between("interest_rate", low=-MAX_ABS_FUNDING, high=MAX_ABS_FUNDING),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "open_interest": (
        NotNull(("venue", "symbol", "period", "ts_event", "open_interest")),
        Matches("symbol", BINANCE_SYMBOL),
        Between("open_interest", low=0, high=MAX_QUANTITY),
        Between("open_interest_value", low=0, high=MAX_NOTIONAL),
        IncreasingWithin("ts_event", ("venue", "symbol", "period")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "margin_rates": (
        NotNull(("exchange", "clearing_code", "start_period", "maintenance_rate", "unit", "ts_event")),
        Matches("clearing_code", CME_CODE),
        Between("maintenance_rate", low=0, high=MAX_MARGIN, strict_low=True),
        InSet("unit", frozenset({"USD", "PCT_NOTIONAL"})),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "margin_notices": (
        NotNull(("notice_id", "product", "rate_type", "tier", "effective_date", "ts_event", "unit", "source")),
        Matches("product", CME_CODE),
        *(
            Between(column, low=0, high=MAX_MARGIN)
            for column in ("old_initial", "new_initial", "old_maintenance", "new_maintenance")
        ),
        Between("change_pct", low=-100, high=300),
        InSet("unit", frozenset({"USD", "PCT_NOTIONAL"})),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "metal_premiums": (
        NotNull(
            (
                "ts_event",
                "session",
                "sge_cny_per_gram",
                "usd_cny",
                "sge_usd_per_oz",
                "ref_usd_per_oz",
                "premium_usd_per_oz",
                "premium_pct",
                "source",
            )
        ),
        Between("sge_cny_per_gram", low=0, high=MAX_CNY_PER_GRAM, strict_low=True),
        Between("usd_cny", low=1, high=20),
        Between("sge_usd_per_oz", low=0, high=MAX_USD_PER_OZ, strict_low=True),
        Between("ref_usd_per_oz", low=0, high=MAX_USD_PER_OZ, strict_low=True),
        Between("premium_usd_per_oz", low=-MAX_USD_PER_OZ, high=MAX_USD_PER_OZ),
        Between("premium_pct", low=-25, high=25),
        InSet("session", frozenset({"AM", "PM"})),
        NotAfterIngestion("ts_event", SKEW),
    ),
    # Scheduled events are known before they happen, so no NotAfterIngestion here.
    "economic_events": (
        NotNull(("source", "event_type", "ts_event", "title", "importance", "all_day")),
        Between("importance", low=1, high=3),
    ),
    "github_releases": (
        NotNull(("repo", "release_id", "tag_name", "draft", "prerelease", "ts_event")),
        Matches("repo", GITHUB_REPO),
        Between("release_id", low=0, high=MAX_RELEASE_ID, strict_low=True),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "repo_stats": (
        NotNull(("repo", "ts_event", "stars", "forks")),
        Matches("repo", GITHUB_REPO),
        *(Between(column, low=0, high=MAX_REPO_COUNT) for column in ("stars", "forks", "open_issues", "watchers")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "headlines": (
        NotNull(("source", "item_id", "ts_event", "title", "matched_tickers", "matched_labs")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "market_series": (
        NotNull(("series", "ts_event", "value", "source")),
        Matches("series", SERIES_ID),
        Between("value", low=-1000, high=1000),
        IncreasingWithin("ts_event", ("series", "source")),
        NotAfterIngestion("ts_event", SKEW),
    ),
}


def not_null_columns(table: str) -> tuple[str, ...]:
    """The columns every row of `table` must have (its NotNull rules), in the order they list them."""
    needed = [column for rule in RULES[table] if isinstance(rule, NotNull) for column in rule.columns]
    return tuple(dict.fromkeys(needed))
