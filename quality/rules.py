"""What valid rows look like, per warehouse table, as plain data.

Kept free of Great Expectations (whose import costs seconds) so anything can read the rules;
quality.validate turns them into GX expectations. The natural-key uniqueness check is not
listed here: its columns are the table's PRIMARY KEY, passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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


Rule = NotNull | Between | AtLeast | InSet | IncreasingWithin | NotAfterIngestion

PRICE_COLUMNS = ("open", "high", "low", "close")
SKEW = timedelta(minutes=2)
# Funding is capped by Binance at a few percent per interval; beyond 5% is a unit error.
MAX_ABS_FUNDING = 0.05

RULES: dict[str, tuple[Rule, ...]] = {
    "bars": (
        NotNull(("symbol", "timeframe", "ts_event", *PRICE_COLUMNS, "volume", "source")),
        *(Between(column, low=0, strict_low=True) for column in PRICE_COLUMNS),
        Between("volume", low=0),
        AtLeast("high", "low"),
        AtLeast("high", "open"),
        AtLeast("high", "close"),
        AtLeast("open", "low"),
        AtLeast("close", "low"),
        InSet("timeframe", frozenset({"1Min", "1Day"})),
        IncreasingWithin("ts_event", ("symbol", "timeframe")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "funding_rates": (
        NotNull(("venue", "symbol", "ts_event", "funding_rate")),
        Between("funding_rate", low=-MAX_ABS_FUNDING, high=MAX_ABS_FUNDING),
        Between("mark_price", low=0, strict_low=True),
        IncreasingWithin("ts_event", ("venue", "symbol")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "premium_index": (
        NotNull(("venue", "symbol", "ts_event", "mark_price")),
        Between("mark_price", low=0, strict_low=True),
        Between("index_price", low=0, strict_low=True),
        Between("last_funding_rate", low=-MAX_ABS_FUNDING, high=MAX_ABS_FUNDING),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "open_interest": (
        NotNull(("venue", "symbol", "period", "ts_event", "open_interest")),
        Between("open_interest", low=0),
        Between("open_interest_value", low=0),
        IncreasingWithin("ts_event", ("venue", "symbol", "period")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "margin_rates": (
        NotNull(("exchange", "clearing_code", "start_period", "maintenance_rate", "unit", "ts_event")),
        Between("maintenance_rate", low=0, strict_low=True),
        InSet("unit", frozenset({"USD", "PCT_NOTIONAL"})),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "margin_notices": (
        NotNull(("notice_id", "product", "rate_type", "tier", "effective_date", "ts_event", "unit", "source")),
        Between("new_initial", low=0),
        Between("new_maintenance", low=0),
        Between("change_pct", low=-100, high=300),
        InSet("unit", frozenset({"USD", "PCT_NOTIONAL"})),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "metal_premiums": (
        NotNull(("ts_event", "session", "sge_cny_per_gram", "usd_cny", "ref_usd_per_oz", "premium_usd_per_oz")),
        Between("sge_cny_per_gram", low=0, strict_low=True),
        Between("usd_cny", low=1, high=20),
        Between("ref_usd_per_oz", low=0, strict_low=True),
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
        NotNull(("repo", "release_id", "tag_name", "ts_event")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "repo_stats": (
        NotNull(("repo", "ts_event", "stars", "forks")),
        Between("stars", low=0),
        Between("forks", low=0),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "headlines": (
        NotNull(("source", "item_id", "ts_event", "title")),
        NotAfterIngestion("ts_event", SKEW),
    ),
    "market_series": (
        NotNull(("series", "ts_event", "value", "source")),
        Between("value", low=-1000, high=1000),
        IncreasingWithin("ts_event", ("series", "source")),
        NotAfterIngestion("ts_event", SKEW),
    ),
}
