"""The Shanghai gold premium: SGE benchmark (CNY/gram) against the LBMA gold PM (USD/oz).

premium (USD/oz) = SGE price x 31.1034768 / USDCNY - LBMA PM
premium_pct      = premium / LBMA PM x 100

Sources and their limits:

- SGE (Shanghai Gold Exchange) benchmark, `POST /graph/DayilyJzj`, an unofficial endpoint
  behind the exchange's chart: `{"zp": [[ms, price], ...], "wp": [[ms, price], ...]}`,
  zp the AM and wp the PM fixing in CNY per gram. A timestamp is Beijing midnight of the
  fixing day in UTC milliseconds, so the day is the date of ms + 8 h. The benchmark
  auctions open at 10:00 and 14:00 Beijing time and their prices are published around
  10:15 and 14:15: those are the rows' ts_event (02:15 and 06:15 UTC; China keeps no DST).
- LBMA gold price PM, `GET /json/gold_pm.json`: `[{"d": "YYYY-MM-DD", "v": [USD, GBP, EUR]}]`.
  The PM auction settles at 15:00 London, after both SGE fixings of the same date, so a
  premium only becomes knowable then; replays must select on ts_ingested, as everywhere.
- USD/CNY has no free official endpoint (FEEDS.md names none): the caller passes the daily
  rates it has (configuration, or a series read elsewhere) as a mapping date -> CNY per
  USD. A fixing day without a rate is rejected with the reason, never filled in.

Both endpoints are fragile; every failure is a typed FeedError from HttpClient or from
here, so a missing premium silences only the signal that needs it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from adapters.feed import FeedBatch, MalformedResponse, Rejected, aware_utc, payload_text
from adapters.http import HttpClient, json_body
from adapters.tables import TABLE_SCHEMAS
from adapters.window import Window, reach_note

FEED = "metal_premium"
SOURCE = "sge-benchmark/lbma-pm"
SGE_PATH = "/graph/DayilyJzj"
LBMA_GOLD_PM_PATH = "/json/gold_pm.json"
GRAMS_PER_TROY_OUNCE = 31.1034768
BEIJING = ZoneInfo("Asia/Shanghai")
BEIJING_OFFSET = timedelta(hours=8)
SGE_SESSIONS = {"zp": "AM", "wp": "PM"}
SGE_FIXING_TIMES = {"AM": time(10, 15), "PM": time(14, 15)}
# The onshore premium has stayed within a few percent of London even in 2013 and 2020;
# tens of percent mean a unit slip (a price per kilogram, an inverted exchange rate).
MAX_ABS_PREMIUM_PCT = 25.0

METAL_PREMIUMS_SCHEMA = TABLE_SCHEMAS["metal_premiums"]

RATIO_SCHEMA: dict[str, pl.DataType] = {
    "timeframe": pl.Utf8(),
    "ts_event": pl.Datetime("us", "UTC"),
    "gold_close": pl.Float64(),
    "silver_close": pl.Float64(),
    "ratio": pl.Float64(),
}


@dataclass(frozen=True)
class SgeFixing:
    fixing_date: date
    session: str  # 'AM' | 'PM'
    cny_per_gram: float

    @property
    def ts_event(self) -> datetime:
        return datetime.combine(self.fixing_date, SGE_FIXING_TIMES[self.session], BEIJING).astimezone(UTC)


def parse_sge_benchmark(payload: Any) -> tuple[list[SgeFixing], list[Rejected]]:
    """The SGE answer -> fixings in (date, session) order, and the points it could not use.

    An answer without both 'zp' and 'wp' lists raises MalformedResponse; empty lists are
    a valid answer with no fixings.
    """
    if not isinstance(payload, dict) or not all(isinstance(payload.get(key), list) for key in SGE_SESSIONS):
        raise MalformedResponse(
            FEED, "SGE benchmark: expected an object with 'zp' and 'wp' lists", payload_text(payload)
        )
    fixings: dict[tuple[date, str], SgeFixing] = {}
    rejected: list[Rejected] = []
    for key, session in SGE_SESSIONS.items():
        for point in payload[key]:
            evidence = {"series": key, "point": point}
            try:
                fixing = _sge_fixing(point, session)
            except ValueError as error:
                rejected.append(Rejected.of(evidence, f"SGE {session} fixing: {error}"))
                continue
            earlier = fixings.setdefault((fixing.fixing_date, session), fixing)
            if earlier.cny_per_gram != fixing.cny_per_gram:
                reason = f"SGE {session} fixing: second price for {fixing.fixing_date} ({earlier.cny_per_gram} kept)"
                rejected.append(Rejected.of(evidence, reason))
    return [fixings[key] for key in sorted(fixings)], rejected


def _sge_fixing(point: Any, session: str) -> SgeFixing:
    if not isinstance(point, list | tuple) or len(point) < 2:
        raise ValueError("not a [ms, price] pair")
    millis = _number(point[0], "timestamp")
    if millis != int(millis) or millis <= 0:
        raise ValueError(f"not a millisecond timestamp: {point[0]!r}")
    try:
        day = (datetime.fromtimestamp(millis / 1000, UTC) + BEIJING_OFFSET).date()
    except (OverflowError, OSError, ValueError):
        # Beyond the years datetime (or the platform's time_t) can hold: no fixing date.
        raise ValueError(f"millisecond timestamp out of range: {point[0]!r}") from None
    return SgeFixing(day, session, _positive_price(point[1]))


def parse_lbma_gold_pm(payload: Any) -> tuple[dict[date, float], list[Rejected]]:
    """The LBMA gold PM history -> USD per troy ounce by date, and the entries it could not use.

    Only the USD price (first of `v`) is read, so the zeros LBMA keeps for EUR before 1999
    do not matter.
    """
    if not isinstance(payload, list):
        raise MalformedResponse(FEED, "LBMA gold PM: expected a list of {d, v}", payload_text(payload))
    prices: dict[date, float] = {}
    rejected: list[Rejected] = []
    for entry in payload:
        try:
            if not isinstance(entry, dict):
                raise ValueError("not an object")
            day = _iso_date(entry.get("d"))
            values = entry.get("v")
            if not isinstance(values, list) or not values:
                raise ValueError("no price list 'v'")
            price = _positive_price(values[0])
        except ValueError as error:
            rejected.append(Rejected.of(entry, f"LBMA gold PM: {error}"))
            continue
        if prices.setdefault(day, price) != price:
            rejected.append(Rejected.of(entry, f"LBMA gold PM: second price for {day} ({prices[day]} kept)"))
    return prices, rejected


def compute_premiums(
    fixings: Iterable[SgeFixing],
    reference_usd_per_oz: Mapping[date, float],
    usd_cny: Mapping[date, float],
    *,
    ingested_at: datetime,
    since: date | None = None,
    window: Window | None = None,
) -> FeedBatch:
    """`metal_premiums` rows: each SGE fixing against the LBMA PM and the USD/CNY rate of its date.

    The premium's days are those both other series cover. A fixing dated after the last LBMA
    price or the last USD/CNY rate is pending (London has not fixed yet, FRED publishes its
    rates a week late) and skipped without a word, as is one before the first rate given (the
    rates passed in are the span asked for); one inside both histories but on a day London
    did not fix (a UK holiday) or New York set no rate, or giving an implausible premium, is
    rejected with the reason. Fixings before `since`, or outside a backfill's `window`, are
    ignored.
    """
    ingested = aware_utc(ingested_at, "ingested_at")
    last_reference = max(reference_usd_per_oz, default=None)
    first_rate, last_rate = min(usd_cny, default=None), max(usd_cny, default=None)
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for fixing in fixings:
        day = fixing.fixing_date
        if (since is not None and day < since) or last_reference is None or day > last_reference:
            continue
        if first_rate is None or last_rate is None or not first_rate <= day <= last_rate:
            continue
        if window is not None and not window.holds(fixing.ts_event):
            continue
        evidence = {"date": day.isoformat(), "session": fixing.session, "sge_cny_per_gram": fixing.cny_per_gram}
        reference = reference_usd_per_oz.get(day)
        if reference is None:
            rejected.append(Rejected.of(evidence, f"no LBMA gold PM for {day}"))
            continue
        rate = usd_cny.get(day)
        if rate is None:
            rejected.append(Rejected.of(evidence, f"no USD/CNY rate for {day}"))
            continue
        if not math.isfinite(rate) or rate <= 0:
            rejected.append(Rejected.of(evidence, f"USD/CNY rate for {day} is not a positive number: {rate!r}"))
            continue
        sge_usd_per_oz = fixing.cny_per_gram * GRAMS_PER_TROY_OUNCE / rate
        premium = sge_usd_per_oz - reference
        premium_pct = premium / reference * 100.0
        if abs(premium_pct) > MAX_ABS_PREMIUM_PCT:
            reason = (
                f"premium of {premium_pct:.1f}% on {day} {fixing.session} exceeds +/-{MAX_ABS_PREMIUM_PCT:.0f}%"
                f" (SGE {fixing.cny_per_gram} CNY/g, USD/CNY {rate}, LBMA {reference})"
            )
            rejected.append(Rejected.of(evidence, reason))
            continue
        rows.append(
            {
                "ts_event": fixing.ts_event,
                "session": fixing.session,
                "sge_cny_per_gram": fixing.cny_per_gram,
                "usd_cny": rate,
                "sge_usd_per_oz": sge_usd_per_oz,
                "ref_usd_per_oz": reference,
                "premium_usd_per_oz": premium,
                "premium_pct": premium_pct,
                "source": SOURCE,
                "ts_ingested": ingested,
            }
        )
    return FeedBatch(FEED, {"metal_premiums": pl.DataFrame(rows, schema=METAL_PREMIUMS_SCHEMA)}, rejected)


def fetch_shanghai_premium(
    sge_client: HttpClient,
    lbma_client: HttpClient,
    usd_cny: Mapping[date, float],
    *,
    ingested_at: datetime,
    since: date | None = None,
    window: Window | None = None,
) -> FeedBatch:
    """Fetch both fixings and compute the premiums (see `compute_premiums`).

    Every failure is a FeedError: FeedUnavailable, RateLimited or FeedError from
    HttpClient, MalformedResponse for an answer of the wrong shape or an LBMA history with
    no usable price. An SGE answer with empty lists gives an empty batch. SGE answers with
    its whole history, which begins with the benchmark in April 2016: a backfill (`window`)
    reaching before the first fixing says so in a note.
    """
    sge_payload = json_body(sge_client.feed, sge_client.request("POST", SGE_PATH))
    fixings, sge_rejected = parse_sge_benchmark(sge_payload)
    lbma_payload = lbma_client.get_json(LBMA_GOLD_PM_PATH)
    reference, lbma_rejected = parse_lbma_gold_pm(lbma_payload)
    if fixings and not reference:
        # LBMA's history goes back to 1968: an empty one is a broken answer, and without it
        # every fixing would look pending and vanish without a trace.
        raise MalformedResponse(FEED, "LBMA gold PM: no usable price in the history", payload_text(lbma_payload))
    batch = compute_premiums(fixings, reference, usd_cny, ingested_at=ingested_at, since=since, window=window)
    batch.rejected[:0] = [*sge_rejected, *lbma_rejected]
    if window is not None:
        first = fixings[0].ts_event if fixings else window.end
        note = reach_note(window, min(first, window.end), "the SGE benchmark's history")
        batch.notes += [note] if note else []
    return batch


def gold_silver_ratio(bars: pl.DataFrame, *, gold_symbol: str = "GLD", silver_symbol: str = "SLV") -> pl.DataFrame:
    """GLD close / SLV close per (timeframe, ts_event) where both have a positive close.

    `bars` holds rows of the `bars` table. A GLD share holds about a tenth of an ounce of
    gold and an SLV share about an ounce of silver, both shrinking with fees, so this is
    proportional to the gold/silver ratio, not equal to it: use its changes, not its level.
    """
    if bars.is_empty():
        return pl.DataFrame([], schema=RATIO_SCHEMA)

    def closes(symbol: str, name: str) -> pl.DataFrame:
        return (
            bars.filter((pl.col("symbol") == symbol) & (pl.col("close") > 0))
            .select("timeframe", "ts_event", pl.col("close").cast(pl.Float64).alias(name))
            .unique(subset=["timeframe", "ts_event"], keep="last", maintain_order=True)
        )

    return (
        closes(gold_symbol, "gold_close")
        .join(closes(silver_symbol, "silver_close"), on=["timeframe", "ts_event"], how="inner")
        .with_columns((pl.col("gold_close") / pl.col("silver_close")).alias("ratio"))
        .sort(["timeframe", "ts_event"])
        .cast(pl.Schema(RATIO_SCHEMA))
    )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"no {what}: {value!r}")
    try:
        number = float(value.replace(",", "") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number: {value!r}") from None
    except OverflowError:
        raise ValueError(f"{what} is out of range: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} is not finite: {value!r}")
    return number


def _iso_date(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"not a YYYY-MM-DD date: {value!r}")


def _positive_price(value: Any) -> float:
    price = _number(value, "price")
    if price <= 0:
        raise ValueError(f"non-positive price: {value!r}")
    return price
