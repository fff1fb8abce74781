"""Daily volatility and credit series -> market_series: VIX (CBOE, else FRED) and the HY spread.

Every daily value is stamped at its series' close in New York, the same instant whichever
source delivered it, so a VIX day loaded from CBOE and later from FRED is one row, not two:
- VIX at 16:15, when SPX options stop trading and CBOE computes its last value of the day;
- the ICE BofA high-yield OAS at 17:00: ICE marks it from end-of-day bond prices, so it is
  known no earlier than the US bond market's close.
A value is thus never dated before the moment it could have been known.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

from adapters.feed import FeedBatch, FeedError, MalformedResponse, Rejected, aware_utc, payload_text
from adapters.http import HttpClient
from adapters.macro_calendar import fred_pages, new_york_to_utc, parse_iso_date
from adapters.tables import TABLE_SCHEMAS
from adapters.window import Window, earliest, history_note, keep_window

logger = logging.getLogger(__name__)

TABLE = "market_series"
CBOE_FEED = "cboe"
FRED_FEED = "fred"

CBOE_VIX_PATH = "/api/global/us_indices/daily_prices/VIX_History.csv"
FRED_OBSERVATIONS_PATH = "/fred/series/observations"

VIX = "VIX"
VIX_CLOSE = time(16, 15)
# FRED writes "." for a day without a value (a holiday, a late print): documented, not an error.
FRED_MISSING = "."
# A daily series may lack its window's first days for a long weekend or a holiday week; a
# longer silence at the start of a backfill means the source has nothing there, and is noted.
DAILY_SLACK = timedelta(days=7)

SERIES_SCHEMA = TABLE_SCHEMAS["market_series"]


@dataclass(frozen=True)
class FredSeries:
    series: str
    close: time
    non_negative: bool


FRED_SERIES: dict[str, FredSeries] = {
    "VIXCLS": FredSeries(VIX, VIX_CLOSE, non_negative=True),
    "BAMLH0A0HYM2": FredSeries("BAMLH0A0HYM2", time(17, 0), non_negative=False),
    # Noon buying rates in New York; the Shanghai premium needs USD/CNY and FRED is its one source.
    "DEXCHUS": FredSeries("USDCNY", time(12, 0), non_negative=True),
}


def fetch_vix(
    cboe_client: HttpClient,
    fred_client: HttpClient | None,
    fred_key: str | None,
    since: date | None,
    ingested_at: datetime,
    *,
    window: Window | None = None,
) -> FeedBatch:
    """VIX closes on/after `since` (or in a backfill's `window`) from CBOE; from FRED's VIXCLS
    when CBOE fails and a key is set."""
    try:
        return fetch_cboe_vix(cboe_client, since, ingested_at, window=window)
    except FeedError as error:
        if fred_client is None or not fred_key:
            raise
        logger.warning("CBOE VIX unavailable (%s); falling back to FRED VIXCLS", error)
    return fetch_fred_series(fred_client, fred_key, "VIXCLS", since, ingested_at, window=window)


def fetch_cboe_vix(
    client: HttpClient, since: date | None, ingested_at: datetime, *, window: Window | None = None
) -> FeedBatch:
    """CBOE serves the whole history in one file; only rows on/after `since`, or in a
    backfill's `window`, are kept (the window's part before the file's first day is noted)."""
    response = client.request("GET", CBOE_VIX_PATH, headers={"Accept": "text/csv"})
    batch = parse_cboe_vix(response.content.decode("utf-8-sig", errors="replace"), since, ingested_at)
    return keep_window(batch, TABLE, window, "the CBOE file is the whole VIX history")


def parse_cboe_vix(text: str, since: date | None, ingested_at: datetime) -> FeedBatch:
    stamp = aware_utc(ingested_at)
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise MalformedResponse(CBOE_FEED, "empty CSV", text)
    header = [name.strip().upper() for name in next(csv.reader([lines[0]]))]
    if "DATE" not in header or "CLOSE" not in header:
        raise MalformedResponse(CBOE_FEED, f"CSV header {lines[0][:200]!r} lacks DATE and CLOSE", text[:100_000])
    date_at, close_at = header.index("DATE"), header.index("CLOSE")
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for line in lines[1:]:
        cells = next(csv.reader([line]))
        if len(cells) <= max(date_at, close_at):
            rejected.append(Rejected.of(line, f"{len(cells)} fields, expected {len(header)}"))
            continue
        day = _us_date(cells[date_at])
        if day is None:
            rejected.append(Rejected.of(line, f"DATE {cells[date_at]!r} is not MM/DD/YYYY"))
            continue
        if since is not None and day < since:
            continue
        value = _number(cells[close_at], non_negative=True)
        if isinstance(value, str):
            rejected.append(Rejected.of(line, f"CLOSE {value}"))
            continue
        rows.append(_row(VIX, new_york_to_utc(day, VIX_CLOSE), value, CBOE_FEED, stamp))
    return _batch(CBOE_FEED, rows, rejected)


def fetch_fred_series(
    client: HttpClient,
    api_key: str,
    series_id: str,
    since: date | None,
    ingested_at: datetime,
    *,
    window: Window | None = None,
) -> FeedBatch:
    """Observations of a FRED series HYDRA knows (FRED_SERIES), on/after `since`, or in a
    backfill's `window`: every page of it, exactly its rows, and a note when FRED has nothing
    for the window's first days (a series that starts later, or that FRED keeps only recent
    years of, as the ICE BofA spreads)."""
    if series_id not in FRED_SERIES:
        raise ValueError(f"unknown FRED series {series_id!r}; known: {', '.join(FRED_SERIES)}")
    params: dict[str, Any] = {"series_id": series_id}
    if window is not None:
        first, last = window.days()
        params |= {"observation_start": first.isoformat(), "observation_end": last.isoformat()}
    elif since is not None:
        params["observation_start"] = since.isoformat()
    batch = FeedBatch(feed=FRED_FEED, tables={TABLE: pl.DataFrame(schema=SERIES_SCHEMA)})
    for payload in fred_pages(client, FRED_OBSERVATIONS_PATH, api_key, params):
        batch.extend(parse_fred_observations(payload, series_id, ingested_at))
    if window is not None:
        rows = window.cut(batch.tables[TABLE])
        batch.tables[TABLE] = rows
        note = history_note(window, earliest(rows), DAILY_SLACK, f"FRED {series_id}")
        batch.notes += [note] if note else []
    return batch


def parse_fred_observations(payload: Any, series_id: str, ingested_at: datetime) -> FeedBatch:
    stamp = aware_utc(ingested_at)
    spec = FRED_SERIES.get(series_id)
    if spec is None:
        raise ValueError(f"unknown FRED series {series_id!r}; known: {', '.join(FRED_SERIES)}")
    items = payload.get("observations") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise MalformedResponse(FRED_FEED, f"{series_id}: no 'observations' list in the answer", payload_text(payload))
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for item in items:
        if not isinstance(item, dict):
            rejected.append(Rejected.of(item, f"{series_id}: observation is not an object"))
            continue
        day = parse_iso_date(item.get("date"))
        if day is None:
            rejected.append(Rejected.of(item, f"{series_id}: date {item.get('date')!r} is not YYYY-MM-DD"))
            continue
        raw = item.get("value")
        if isinstance(raw, str) and raw.strip() == FRED_MISSING:
            continue
        value = _number(raw, non_negative=spec.non_negative)
        if isinstance(value, str):
            rejected.append(Rejected.of(item, f"{series_id}: value {value}"))
            continue
        rows.append(_row(spec.series, new_york_to_utc(day, spec.close), value, FRED_FEED, stamp))
    return _batch(FRED_FEED, rows, rejected)


def _us_date(text: str) -> date | None:
    month, _, rest = text.strip().partition("/")
    day, _, year = rest.partition("/")
    if not (month.isdigit() and day.isdigit() and year.isdigit() and len(year) == 4):
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _number(raw: Any, *, non_negative: bool) -> float | str:
    """The finite number in `raw`, or why it is not one (the reason goes to quarantine)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return f"{raw!r} is not a number"
    try:
        value = float(raw)
    except ValueError:
        return f"{raw!r} is not a number"
    if not math.isfinite(value):
        return f"{raw!r} is not finite"
    if non_negative and value < 0:
        return f"{raw!r} is negative"
    return value


def _row(series: str, ts_event: datetime, value: float, source: str, ingested_at: datetime) -> dict[str, Any]:
    return {"series": series, "ts_event": ts_event, "value": value, "source": source, "ts_ingested": ingested_at}


def _batch(feed: str, rows: list[dict[str, Any]], rejected: list[Rejected]) -> FeedBatch:
    """The rows of the days already closed. CBOE's file carries the current day's VIX while it
    still trades: that value is not the day's close, which is known only at 16:15 New York,
    so it is left out, not stored as a close (nor quarantined as dated ahead of its ingestion);
    the first run after the close loads the day (the cursor resumes on the last stored day)."""
    closed = [row for row in rows if row["ts_event"] <= row["ts_ingested"]]
    return FeedBatch(feed=feed, tables={TABLE: pl.DataFrame(closed, schema=SERIES_SCHEMA)}, rejected=rejected)
