"""Binance USD-M futures: funding history, premium index, open interest (live and history).

Public endpoints only, no keys. Parsing is separate from fetching: the parse_* functions
turn one decoded answer into a FeedBatch and are pure (the ingestion time is passed in).
Binance sends numbers as strings and has changed field types over the years, so each item
is checked on its own: a bad item becomes a Rejected with the field and value at fault,
and the good items of the same page still become rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import polars as pl
import requests

from adapters.feed import FeedBatch, MalformedResponse, Rejected, payload_text
from adapters.http import HttpClient, json_body
from adapters.tables import TABLE_SCHEMAS
from adapters.window import Window, current_only, earliest, history_note, reach_note

FEED = "binance"
VENUE = "binance-usdm"
DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")

FUNDING_PATH = "/fapi/v1/fundingRate"
PREMIUM_INDEX_PATH = "/fapi/v1/premiumIndex"
OPEN_INTEREST_PATH = "/fapi/v1/openInterest"
OPEN_INTEREST_HISTORY_PATH = "/futures/data/openInterestHist"

FUNDING_PAGE_LIMIT = 1000
OPEN_INTEREST_HISTORY_PAGE_LIMIT = 500
OPEN_INTEREST_HISTORY_PERIODS: Mapping[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
}
SPOT_PERIOD = "spot"
# Binance keeps 30 days of open-interest history and answers 400 to an older startTime;
# a day of slack absorbs clock skew between us and them and the length of a run.
OPEN_INTEREST_HISTORY_REACH = timedelta(days=29)

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
WEIGHT_LIMIT_1M = 2400
# The weight counts every client on this IP, the trading flow included. Stopping at 2000
# leaves 400 for them, so ingestion never provokes a 429, let alone the 418 ban after it;
# what a stopped run did not fetch, the next run fetches from where the warehouse ends.
WEIGHT_STOP_AT = 2000

# A funding rate beyond 5% per interval is no market Binance runs (its caps are far lower):
# such a value is a unit or parsing error upstream, not a signal.
MAX_ABS_FUNDING_RATE = 0.05
# USD-M futures started in September 2019; an earlier time is a unit error (s for ms).
EARLIEST_EVENT = datetime(2019, 1, 1, tzinfo=UTC)
# Only nextFundingTime lies ahead of now, by at most one funding interval (8 h).
LATEST_EVENT_AHEAD = timedelta(days=1)
# Funding settles every 8 h (or oftener): a backfill's first rate further than that past the
# window's start means the contract was not listed yet, which the run notes.
FUNDING_SLACK = timedelta(hours=8)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Epoch milliseconds have 13 digits; the cap keeps int() off absurdly long strings.
DIGITS = re.compile(r"\d{1,19}")

TIME = pl.Datetime("us", "UTC")
SCHEMAS = {table: TABLE_SCHEMAS[table] for table in ("funding_rates", "premium_index", "open_interest")}

Row = dict[str, Any]


class _Invalid(ValueError):
    """One item's problem, worded for the quarantine table."""


@dataclass
class WeightBudget:
    """The request weight this IP has used in the current minute, as Binance last reported it."""

    stop_at: int = WEIGHT_STOP_AT
    used: int | None = None

    def record(self, response: requests.Response) -> None:
        value = response.headers.get(WEIGHT_HEADER, "")
        if value.strip().isdigit():
            self.used = int(value)

    @property
    def spent(self) -> bool:
        return self.used is not None and self.used >= self.stop_at


# --- parsing: pure, one answer in, one FeedBatch out -------------------------------------


def parse_funding_rates(payload: Any, ingested_at: datetime) -> FeedBatch:
    """A /fapi/v1/fundingRate answer; fundingRate is already a per-interval fraction."""
    items = _expect_list(FUNDING_PATH, payload)
    return _parse_items(
        FUNDING_PATH, "funding_rates", items, partial(_funding_row, ingested_at=ingested_at), ingested_at
    )


def parse_premium_index(payload: Any, ingested_at: datetime) -> FeedBatch:
    """A /fapi/v1/premiumIndex answer: one object with ?symbol=, a list of them without."""
    if isinstance(payload, dict):
        payload = [payload]
    items = _expect_list(PREMIUM_INDEX_PATH, payload, expected="an object or a list")
    row_of = partial(_premium_index_row, ingested_at=ingested_at)
    return _parse_items(PREMIUM_INDEX_PATH, "premium_index", items, row_of, ingested_at)


def parse_open_interest(payload: Any, ingested_at: datetime) -> FeedBatch:
    """A /fapi/v1/openInterest answer, stored with period 'spot'."""
    if not isinstance(payload, dict):
        raise _malformed(OPEN_INTEREST_PATH, "expected an object", payload)
    row_of = partial(_open_interest_row, ingested_at=ingested_at)
    return _parse_items(OPEN_INTEREST_PATH, "open_interest", [payload], row_of, ingested_at)


def parse_open_interest_history(payload: Any, period: str, ingested_at: datetime) -> FeedBatch:
    """A /futures/data/openInterestHist answer for `period` ('5m'..'1d')."""
    items = _expect_list(OPEN_INTEREST_HISTORY_PATH, payload)
    row_of = partial(_open_interest_history_row, period=period, ingested_at=ingested_at)
    return _parse_items(OPEN_INTEREST_HISTORY_PATH, "open_interest", items, row_of, ingested_at)


def _funding_row(item: Mapping[str, Any], ingested_at: datetime) -> Row:
    return {
        "symbol": _symbol(item),
        "ts_event": _time(item, "fundingTime", ingested_at),
        "funding_rate": _funding_rate(item, "fundingRate"),
        # Early records (2019 on) carry markPrice "": the rate is still good.
        "mark_price": _optional(item, "markPrice", _positive),
    }


def _premium_index_row(item: Mapping[str, Any], ingested_at: datetime) -> Row:
    return {
        "symbol": _symbol(item),
        "ts_event": _time(item, "time", ingested_at),
        "mark_price": _positive(item, "markPrice"),
        "index_price": _optional(item, "indexPrice", _positive),
        "estimated_settle_price": _optional(item, "estimatedSettlePrice", _positive),
        "last_funding_rate": _optional(item, "lastFundingRate", _funding_rate),
        "next_funding_time": _optional_time(item, "nextFundingTime", ingested_at),
        "interest_rate": _optional(item, "interestRate", _funding_rate),
    }


def _open_interest_row(item: Mapping[str, Any], ingested_at: datetime) -> Row:
    return {
        "symbol": _symbol(item),
        "period": SPOT_PERIOD,
        "ts_event": _time(item, "time", ingested_at),
        "open_interest": _non_negative(item, "openInterest"),
        "open_interest_value": None,
    }


def _open_interest_history_row(item: Mapping[str, Any], period: str, ingested_at: datetime) -> Row:
    return {
        "symbol": _symbol(item),
        "period": period,
        "ts_event": _time(item, "timestamp", ingested_at),
        "open_interest": _non_negative(item, "sumOpenInterest"),
        "open_interest_value": _optional(item, "sumOpenInterestValue", _non_negative),
    }


def _parse_items(
    path: str,
    table: str,
    items: Iterable[Any],
    row_of: Callable[[Mapping[str, Any]], Row],
    ingested_at: datetime,
) -> FeedBatch:
    ts_ingested = _utc(ingested_at, "ingested_at")
    rows: list[Row] = []
    rejected: list[Rejected] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise _Invalid(f"item is a JSON {type(item).__name__}, not an object")
            rows.append({"venue": VENUE, **row_of(item), "ts_ingested": ts_ingested})
        except _Invalid as problem:
            rejected.append(Rejected.of(item, f"{path}: {problem}"))
    frame = pl.DataFrame(rows, schema=dict(SCHEMAS[table]))
    return FeedBatch(feed=FEED, tables={table: frame}, rejected=rejected)


def _expect_list(path: str, payload: Any, expected: str = "a list") -> list[Any]:
    if not isinstance(payload, list):
        raise _malformed(path, f"expected {expected}, got a JSON {type(payload).__name__}", payload)
    return payload


def _malformed(path: str, message: str, payload: Any) -> MalformedResponse:
    return MalformedResponse(FEED, f"{path}: {message}", payload_text(payload))


def _present(item: Mapping[str, Any], key: str) -> Any:
    value = item.get(key)
    if value is None:
        raise _Invalid(f"{key}: missing")
    return value


def _symbol(item: Mapping[str, Any]) -> str:
    value = _present(item, "symbol")
    if not isinstance(value, str) or not value:
        raise _Invalid(f"symbol={value!r}: not a symbol name")
    return value


def _number(item: Mapping[str, Any], key: str) -> float:
    value = _present(item, key)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Invalid(f"{key}={value!r}: not a number")
    if isinstance(value, str) and not DECIMAL.fullmatch(value.strip()):
        raise _Invalid(f"{key}={value!r}: not a number")
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid(f"{key}={value!r}: out of range") from None
    if not math.isfinite(number):
        raise _Invalid(f"{key}={value!r}: not finite")
    return number


def _funding_rate(item: Mapping[str, Any], key: str) -> float:
    rate = _number(item, key)
    if abs(rate) > MAX_ABS_FUNDING_RATE:
        raise _Invalid(f"{key}={item[key]!r}: beyond ±{MAX_ABS_FUNDING_RATE} per funding interval")
    return rate


def _positive(item: Mapping[str, Any], key: str) -> float:
    number = _number(item, key)
    if number <= 0:
        raise _Invalid(f"{key}={item[key]!r}: not positive")
    return number


def _non_negative(item: Mapping[str, Any], key: str) -> float:
    number = _number(item, key)
    if number < 0:
        raise _Invalid(f"{key}={item[key]!r}: negative")
    return number


def _optional(item: Mapping[str, Any], key: str, read: Callable[[Mapping[str, Any], str], float]) -> float | None:
    """Absent, null and "" mean unknown; anything else must be valid."""
    if item.get(key) in (None, ""):
        return None
    return read(item, key)


def _time(item: Mapping[str, Any], key: str, ingested_at: datetime) -> datetime:
    """Epoch milliseconds, as a JSON integer or (openInterestHist, sometimes) a string."""
    value = _present(item, key)
    if isinstance(value, str) and DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{key}={value!r}: not epoch milliseconds")
    # Compared as integers first: an absurd value would overflow datetime arithmetic.
    if not _to_ms(EARLIEST_EVENT, "EARLIEST_EVENT") <= value <= _to_ms(ingested_at + LATEST_EVENT_AHEAD, "ingested_at"):
        raise _Invalid(f"{key}={item[key]!r}: not between {EARLIEST_EVENT:%Y-%m-%d} and a day after ingestion")
    return EPOCH + value * ONE_MS


def _optional_time(item: Mapping[str, Any], key: str, ingested_at: datetime) -> datetime | None:
    """Delivery contracts, which have no funding, send nextFundingTime 0."""
    if item.get(key) in (None, "", 0):
        return None
    return _time(item, key, ingested_at)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


def _to_ms(moment: datetime, name: str) -> int:
    return (_utc(moment, name) - EPOCH) // ONE_MS


# --- fetching: one function per endpoint, one to run them all ----------------------------


def fetch_funding_rates(
    client: HttpClient,
    symbol: str,
    since: datetime | None,
    ingested_at: datetime,
    *,
    until: datetime | None = None,
    budget: WeightBudget | None = None,
) -> FeedBatch:
    """Funding history from `since` (inclusive) on, before `until` if given (a backfill's
    window); without `since`, the latest page.

    Binance returns up to 1000 rows from startTime, oldest first: the next page starts one
    millisecond after the latest funding time of this one, until a page comes back short or
    passes `until`. A backfill notes where the contract's history begins inside its window.
    """
    budget = budget if budget is not None else WeightBudget()
    batch = FeedBatch(feed=FEED)
    start = None if since is None else _to_ms(since, "since")
    while True:
        params: dict[str, Any] = {"symbol": symbol, "limit": FUNDING_PAGE_LIMIT}
        if start is not None:
            params["startTime"] = start
        if until is not None:
            params["endTime"] = _to_ms(until, "until") - 1
        payload = _get(client, FUNDING_PATH, params, budget)
        page = parse_funding_rates(payload, ingested_at)
        batch.extend(page)
        latest = page.tables["funding_rates"]["ts_event"].max()
        if len(payload) < FUNDING_PAGE_LIMIT or not isinstance(latest, datetime):
            break
        if until is not None and latest >= until:
            break
        next_start = _to_ms(latest, "fundingTime") + 1
        if start is not None and next_start <= start:
            break
        if budget.spent:
            batch.notes.append(_budget_note(budget, symbol, EPOCH + next_start * ONE_MS, until or ingested_at))
            break
        start = next_start
    if since is not None and until is not None:
        window = Window(since, until)
        rows = window.cut(batch.tables["funding_rates"])
        batch.tables["funding_rates"] = rows
        note = history_note(window, earliest(rows), FUNDING_SLACK, f"Binance's {symbol} funding history")
        batch.notes += [note] if note else []
    return batch


def fetch_premium_index(
    client: HttpClient, symbol: str, ingested_at: datetime, *, budget: WeightBudget | None = None
) -> FeedBatch:
    payload = _get(client, PREMIUM_INDEX_PATH, {"symbol": symbol}, budget)
    return parse_premium_index(payload, ingested_at)


def fetch_open_interest(
    client: HttpClient, symbol: str, ingested_at: datetime, *, budget: WeightBudget | None = None
) -> FeedBatch:
    payload = _get(client, OPEN_INTEREST_PATH, {"symbol": symbol}, budget)
    return parse_open_interest(payload, ingested_at)


def fetch_open_interest_history(
    client: HttpClient,
    symbol: str,
    since: datetime | None,
    ingested_at: datetime,
    *,
    until: datetime | None = None,
    period: str = "5m",
    budget: WeightBudget | None = None,
) -> FeedBatch:
    """Open-interest history from `since` (clamped to the 29 days Binance still serves) to
    `until` (a backfill's window end) or `ingested_at`; without `since`, the latest page.

    Binance does not document which rows a startTime alone selects on this endpoint (only
    that without one it serves the most recent), so every request names a window
    [startTime, endTime] that holds at most one page of periods, and the windows tile the
    range: the answer is the same whichever end Binance counts from. A backfill reaching
    further back than Binance keeps says so in a note.
    """
    _check_period(period)
    budget = budget if budget is not None else WeightBudget()
    window = OPEN_INTEREST_HISTORY_PAGE_LIMIT * OPEN_INTEREST_HISTORY_PERIODS[period] // ONE_MS
    # A backfill's window excludes its end; an incremental fetch runs up to the ingestion time.
    end = _to_ms(ingested_at, "ingested_at") if until is None else _to_ms(until, "until") - 1
    kept_from = ingested_at - OPEN_INTEREST_HISTORY_REACH
    start = end - window + 1 if since is None else _to_ms(since, "since")
    start = max(start, _to_ms(kept_from, "ingested_at"))
    batch = FeedBatch(feed=FEED)
    while start <= end:
        if budget.spent:
            batch.notes.append(_budget_note(budget, symbol, EPOCH + start * ONE_MS, until or ingested_at))
            break
        window_end = min(start + window - 1, end)
        params = {
            "symbol": symbol,
            "period": period,
            "limit": OPEN_INTEREST_HISTORY_PAGE_LIMIT,
            "startTime": start,
            "endTime": window_end,
        }
        payload = _get(client, OPEN_INTEREST_HISTORY_PATH, params, budget)
        batch.extend(parse_open_interest_history(payload, period, ingested_at))
        start = window_end + 1
    if since is not None and until is not None:
        backfill = Window(since, until)
        batch.tables["open_interest"] = backfill.cut(batch.tables.get("open_interest", _empty("open_interest")))
        note = reach_note(backfill, kept_from, "the source keeps 30 days")
        batch.notes += [note] if note else []
    return batch


def _budget_note(budget: WeightBudget, symbol: str, stopped: datetime, end: datetime) -> str:
    return (
        f"request weight {budget.used} of {WEIGHT_LIMIT_1M} used, {symbol} paging stopped:"
        f" {Window(min(stopped, end), end)} not loaded, run again"
    )


def _empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(SCHEMAS[table]))


Step = tuple[str, Callable[[], FeedBatch]]


@dataclass(frozen=True)
class Cursors:
    """Where an incremental fetch resumes each history: the newest stored row of each symbol,
    apiece for funding and open interest. A symbol that failed, or is new, resumes from its
    own history (none stored: the latest page), never from another symbol's or endpoint's."""

    funding: Mapping[str, datetime] = field(default_factory=dict)
    open_interest: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def everywhere(cls, symbols: Iterable[str], since: datetime | None) -> Cursors:
        """Every history of every symbol resumed from one moment (None: the latest pages)."""
        if since is None:
            return cls()
        resumed = dict.fromkeys(symbols, since)
        return cls(funding=resumed, open_interest=resumed)


def binance_steps(
    client: HttpClient,
    symbols: Iterable[str],
    cursors: Cursors,
    ingested_at: datetime,
    *,
    period: str = "5m",
    window: Window | None = None,
) -> list[Step]:
    """Every endpoint of every symbol as a separate labelled step sharing one weight budget.

    Steps are independent so a caller can load what succeeded when one fails. When the IP's
    weight nears the limit the remaining steps return nothing, with a note: the histories
    resume next run from their `cursors` then, the live figures are simply read again.

    With a backfill `window`, the histories are fetched over it (from its start, whatever the
    cursors say) and the live figures, which have no history, only when it reaches
    `ingested_at`; each says in a note what of the window it could not give.
    """
    _check_period(period)
    budget = WeightBudget()
    until = None if window is None else window.end
    steps: list[Step] = []
    for symbol in symbols:
        funding_since = window.start if window is not None else cursors.funding.get(symbol)
        history_since = window.start if window is not None else cursors.open_interest.get(symbol)
        steps += [
            (
                f"funding {symbol}",
                partial(fetch_funding_rates, client, symbol, funding_since, ingested_at, until=until, budget=budget),
            ),
            (
                f"premium index {symbol}",
                current_only(
                    partial(fetch_premium_index, client, symbol, ingested_at, budget=budget),
                    window,
                    ingested_at,
                    "the source gives only the current premium index",
                    FEED,
                ),
            ),
            (
                f"open interest {symbol}",
                current_only(
                    partial(fetch_open_interest, client, symbol, ingested_at, budget=budget),
                    window,
                    ingested_at,
                    "the source gives only the current open interest (its history is the next part)",
                    FEED,
                ),
            ),
            (
                f"open interest history {symbol}",
                partial(
                    fetch_open_interest_history,
                    client,
                    symbol,
                    history_since,
                    ingested_at,
                    until=until,
                    period=period,
                    budget=budget,
                ),
            ),
        ]
    return [(label, _within_budget(budget, step)) for label, step in steps]


def _within_budget(budget: WeightBudget, step: Callable[[], FeedBatch]) -> Callable[[], FeedBatch]:
    def run() -> FeedBatch:
        if budget.spent:
            note = f"request weight {budget.used} of {WEIGHT_LIMIT_1M} used: not fetched this run, run again"
            return FeedBatch(feed=FEED, notes=[note])
        return step()

    return run


def fetch_binance(
    client: HttpClient,
    symbols: Iterable[str],
    since: datetime | None,
    ingested_at: datetime,
    *,
    period: str = "5m",
) -> FeedBatch:
    """All four endpoints for every symbol from `since`, merged; the first failure propagates."""
    batch = FeedBatch(feed=FEED)
    wanted = list(symbols)
    for _, step in binance_steps(client, wanted, Cursors.everywhere(wanted, since), ingested_at, period=period):
        batch.extend(step())
    return batch


def _check_period(period: str) -> None:
    if period not in OPEN_INTEREST_HISTORY_PERIODS:
        raise ValueError(f"period {period!r} is not one of {', '.join(OPEN_INTEREST_HISTORY_PERIODS)}")


def _get(client: HttpClient, path: str, params: dict[str, Any], budget: WeightBudget | None) -> Any:
    response = client.request("GET", path, params=params)
    if budget is not None:
        budget.record(response)
    return json_body(client.feed, response)
