"""Alpaca bars through alpaca-py's historical data clients: fetch, page, validate, shape.

alpaca-py builds the URLs, authenticates and pages: `RESTClient._get_marketdata` asks for
`limit=10000` and follows `next_page_token` until the answer's token is null, merging every
page's `bars` into one dict of symbol -> list. The clients are built with `raw_data=True`, so
that dict reaches this module untouched and is parsed here into columns: a pydantic `Bar` per
row (the SDK's default) caps a backfill at roughly a hundred thousand bars a second.

The SDK gives no request timeout and would retry HTTP 429/504 after a fixed `_retry_wait`,
whatever Alpaca says to wait (alpaca/common/rest.py). So its own retry is turned off and its
session sends every request through HttpClient, the client of every other feed: a timeout,
bounded retries with backoff (`retry_wait_s` the first), a 429's stated wait honoured up to
`max_wait_s` and a RateLimited error beyond it. Given a pacer, every request the SDK sends,
each page and each retry, first waits for its turn within Alpaca's rate (adapters.pacing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import requests
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.data.enums import DataFeed
from alpaca.data.historical.crypto import CryptoHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from adapters.alpaca_sdk import bound_client
from adapters.feed import FeedBatch, FeedError, FeedUnavailable, MalformedResponse, Rejected
from adapters.http import RATE_LIMIT_STATUS, RETRYABLE_STATUS, HttpClient
from adapters.pacing import RequestPacer
from adapters.tables import TABLE_SCHEMAS
from core.config import is_crypto

FEED = "alpaca_data"
CRYPTO_SOURCE = "alpaca-crypto"
TIMEFRAMES: dict[str, TimeFrame] = {"1Min": TimeFrame.Minute, "1Day": TimeFrame.Day}
STOCK_FEEDS: dict[str, DataFeed] = {"iex": DataFeed.IEX, "sip": DataFeed.SIP}

# The API's `start` is inclusive, so resuming a step after the last stored bar's open skips
# that bar and keeps the next. A daily bar opens at midnight New York, 04:00 or 05:00 UTC
# with daylight saving, so consecutive daily bars can be only 23 h apart: a whole day's step
# would skip one, an hour's cannot.
RESUME_STEP: dict[str, timedelta] = {"1Min": timedelta(minutes=1), "1Day": timedelta(hours=1)}

# What the SDK is handed to read (and raise its APIError on): every answer HttpClient does
# not retry itself.
SDK_READS = frozenset(range(300, 600)) - RATE_LIMIT_STATUS - RETRYABLE_STATUS

MAX_PAYLOAD_CHARS = 100_000
MAX_MESSAGE_CHARS = 200

BARS_SCHEMA = TABLE_SCHEMAS["bars"]

NUMBER_FIELDS = ("o", "h", "l", "c", "v", "n", "vw")
PRICE_FIELDS = ("o", "h", "l", "c")
REQUIRED_FIELDS = ("t", "o", "h", "l", "c", "v")
# `n` is read as a float so that 2.7 is caught as "not a whole number" instead of truncated.
RAW_SCHEMA: dict[str, pl.DataType] = {"t": pl.String(), **{name: pl.Float64() for name in NUMBER_FIELDS}}
ONE_BY_ONE_CHUNK = 1000
INT64_LIMIT = 2.0**63
ALPACA_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
RFC3339_TIMESTAMP = "%+"


class _BoundedSession(requests.Session):
    """The SDK's session: every request goes through HttpClient (adapters.http), the retry
    policy of every feed: the timeout, the pace, backoff on connection errors and 5xx, and a
    429's stated wait (Retry-After, else Alpaca's X-RateLimit-Reset) honoured up to
    `max_wait_s`, a RateLimited error beyond it. Other answers reach the SDK as they came, so it
    raises its APIError with Alpaca's message; the last is kept, so a response the SDK cannot
    read still reaches quarantine."""

    def __init__(self, http: HttpClient) -> None:
        super().__init__()
        self.http = http
        self.last_response: requests.Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        # The data clients only GET (a query, no body); redirects are followed as for any feed.
        method, url = args[:2]
        response = self.http.request(
            method, url, params=kwargs.get("params"), headers=kwargs.get("headers"), accept_status=SDK_READS
        )
        self.last_response = response
        return response


def make_stock_client(
    base_url: str,
    api_key: str | None,
    secret_key: str | None,
    *,
    timeout_s: float = 10.0,
    max_retries: int = 3,
    retry_wait_s: float = 3.0,
    max_wait_s: float = 30.0,
    pacer: RequestPacer | None = None,
) -> StockHistoricalDataClient | None:
    """A raw-dict stock client, or None without both keys: stock data needs them, crypto does not."""
    if not api_key or not secret_key:
        return None
    client = StockHistoricalDataClient(
        api_key=api_key, secret_key=secret_key, raw_data=True, url_override=base_url.rstrip("/")
    )
    _bound(client, timeout_s, max_retries, retry_wait_s, max_wait_s, pacer)
    return client


def make_crypto_client(
    base_url: str,
    api_key: str | None = None,
    secret_key: str | None = None,
    *,
    timeout_s: float = 10.0,
    max_retries: int = 3,
    retry_wait_s: float = 3.0,
    max_wait_s: float = 30.0,
    pacer: RequestPacer | None = None,
) -> CryptoHistoricalDataClient:
    """A raw-dict crypto client; keys are optional and only raise the rate limit."""
    with_keys = bool(api_key and secret_key)
    client = CryptoHistoricalDataClient(
        api_key=api_key if with_keys else None,
        secret_key=secret_key if with_keys else None,
        raw_data=True,
        url_override=base_url.rstrip("/"),
    )
    _bound(client, timeout_s, max_retries, retry_wait_s, max_wait_s, pacer)
    return client


def _bound(
    client: RESTClient,
    timeout_s: float,
    max_retries: int,
    retry_wait_s: float,
    max_wait_s: float,
    pacer: RequestPacer | None,
) -> None:
    http = HttpClient(
        feed=FEED,
        base_url="",  # the SDK sends whole URLs
        user_agent="",  # and its own User-Agent
        timeout_s=timeout_s,
        max_retries=max_retries,
        backoff_s=retry_wait_s,
        max_wait_s=max_wait_s,
        pacer=pacer,
    )
    # HttpClient retries; the SDK's own retry (a fixed wait whatever Alpaca says) stays off.
    bound_client(client, _BoundedSession(http), max_retries=0, retry_wait_s=0.0)


def fetch_bars(
    stock_client: StockHistoricalDataClient | None,
    crypto_client: CryptoHistoricalDataClient,
    symbols: Sequence[str],
    timeframe: str,
    start: datetime,
    end: datetime | None,
    ingested_at: datetime,
    *,
    stock_feed: str = "iex",
) -> FeedBatch:
    """Every bar of `symbols` opening in [start, end) (end None: up to now), all pages, as `bars` rows.

    Alpaca's `end` is inclusive, so a bar opening exactly at `end` is dropped here: a window's
    edge bar belongs to the next window, and the bar still forming at `now` to no one yet.
    Bad bars become Rejected items while the rest load. The whole call fails with a FeedError
    if either asset class's request fails: fetch stocks and crypto in separate calls to keep
    one class's outage from costing the other's bars.
    """
    frame_timeframe = _timeframe(timeframe)
    feed = STOCK_FEEDS.get(stock_feed)
    if feed is None:
        raise ValueError(f"unknown stock feed {stock_feed!r}: expected one of {', '.join(STOCK_FEEDS)}")
    for name, moment in (("start", start), ("end", end), ("ingested_at", ingested_at)):
        if moment is not None:
            _require_aware(name, moment)
    wanted = list(dict.fromkeys(symbols))
    stocks = [symbol for symbol in wanted if not is_crypto(symbol)]
    cryptos = [symbol for symbol in wanted if is_crypto(symbol)]
    batch = FeedBatch(FEED, tables={"bars": pl.DataFrame(schema=BARS_SCHEMA)})
    if end is not None and start >= end:
        return batch

    parts: list[FeedBatch] = []
    if stocks:
        if stock_client is None:
            raise FeedUnavailable(FEED, "stock bars need ALPACA_API_KEY and ALPACA_SECRET_KEY in the environment")
        stock_request = StockBarsRequest(
            symbol_or_symbols=stocks, timeframe=frame_timeframe, start=start, end=end, feed=feed
        )
        raw = _call(stock_client, lambda: stock_client.get_stock_bars(stock_request), "stock bars", stock_feed)
        parts.append(parse_bars(raw, stocks, timeframe, f"alpaca-{stock_feed}", ingested_at))
    if cryptos:
        crypto_request = CryptoBarsRequest(symbol_or_symbols=cryptos, timeframe=frame_timeframe, start=start, end=end)
        raw = _call(crypto_client, lambda: crypto_client.get_crypto_bars(crypto_request), "crypto bars", None)
        parts.append(parse_bars(raw, cryptos, timeframe, CRYPTO_SOURCE, ingested_at))
    for part in parts:
        batch.extend(part)
    in_range = pl.col("ts_event") >= start
    if end is not None:
        in_range &= pl.col("ts_event") < end
    batch.tables["bars"] = batch.tables["bars"].filter(in_range)
    return batch


def next_start(last_stored: datetime | None, timeframe: str, first_start: datetime) -> datetime:
    """Where an incremental fetch resumes: the bar after the last stored one, or `first_start`
    for a symbol never stored. Backfills pass explicit start and end instead."""
    step = RESUME_STEP[_timeframe_name(timeframe)]
    if last_stored is None:
        _require_aware("first_start", first_start)
        return first_start
    _require_aware("last_stored", last_stored)
    return last_stored + step


def parse_bars(
    raw: Mapping[str, Any],
    requested: Collection[str],
    timeframe: str,
    source: str,
    ingested_at: datetime,
) -> FeedBatch:
    """Symbol -> raw bar dicts (as the SDK merges its pages) into `bars` rows and Rejected items."""
    _timeframe_name(timeframe)
    _require_aware("ingested_at", ingested_at)
    rejected: list[Rejected] = []
    frames: list[pl.DataFrame] = []
    bars_of: dict[str, list[Any]] = {}
    for symbol, bars in raw.items():
        if symbol not in requested:
            rejected.append(Rejected.of({"symbol": symbol, "bars": bars}, f"symbol {symbol!r} was not requested"))
            continue
        if not isinstance(bars, list):
            rejected.append(Rejected.of({"symbol": symbol, "bars": bars}, f"bars of {symbol} are not a JSON array"))
            continue
        if not bars:
            continue
        bars_of[symbol] = bars
        frames.append(_symbol_frame(bars).with_columns(symbol=pl.lit(symbol), row=pl.int_range(pl.len())))
    if not frames:
        return FeedBatch(FEED, tables={"bars": pl.DataFrame(schema=BARS_SCHEMA)}, rejected=rejected)

    frame = pl.concat(frames)
    frame = frame.with_columns(ts_event=_timestamps(frame["t"]))
    checks = _checks()
    frame = frame.with_columns(bad=pl.any_horizontal([failed.fill_null(False) for failed, _ in checks]))
    bad = frame.filter(pl.col("bad"))
    if not bad.is_empty():
        reason = pl.coalesce([pl.when(failed.fill_null(False)).then(text) for failed, text in checks])
        for symbol, row, why in bad.select("symbol", "row", reason.alias("reason")).iter_rows():
            rejected.append(Rejected.of({"symbol": symbol, "bar": bars_of[symbol][row]}, why))
    good = frame.filter(~pl.col("bad")).select(
        "symbol",
        timeframe=pl.lit(timeframe),
        ts_event="ts_event",
        open="o",
        high="h",
        low="l",
        close="c",
        volume="v",
        trade_count=pl.col("n").cast(pl.Int64),
        vwap="vw",
        source=pl.lit(source),
        ts_ingested=pl.lit(ingested_at.astimezone(UTC), dtype=pl.Datetime("us", "UTC")),
    )
    return FeedBatch(FEED, tables={"bars": good}, rejected=rejected)


def _symbol_frame(bars: list[Any]) -> pl.DataFrame:
    """One symbol's bars as typed columns plus `problem`, why a bar's values could not be typed."""
    frame, problems = _typed(bars)
    for row, why in _coerced(frame, bars).items():
        problems.setdefault(row, why)
    if not problems:
        return frame.with_columns(problem=pl.lit(None, dtype=pl.String))
    column = [problems.get(row) for row in range(frame.height)]
    return frame.with_columns(problem=pl.Series(column, dtype=pl.String))


def _typed(bars: list[Any]) -> tuple[pl.DataFrame, dict[int, str]]:
    try:
        return pl.from_dicts(bars, schema=RAW_SCHEMA), {}
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        pass
    # Some value polars cannot coerce ("abc" for a price, a bar that is not an object).
    # Narrow it down chunk by chunk, so that one bad value in a backfill sends a thousand
    # bars, not all of them, to be typed one by one to say which value is wrong.
    if len(bars) <= ONE_BY_ONE_CHUNK:
        cleaned, problems = _typed_one_by_one(bars)
        return pl.from_dicts(cleaned, schema=RAW_SCHEMA), problems
    frames: list[pl.DataFrame] = []
    problems = {}
    for offset in range(0, len(bars), ONE_BY_ONE_CHUNK):
        frame, found = _typed(bars[offset : offset + ONE_BY_ONE_CHUNK])
        frames.append(frame)
        problems.update({offset + row: why for row, why in found.items()})
    return pl.concat(frames), problems


def _coerced(frame: pl.DataFrame, bars: list[Any]) -> dict[int, str]:
    """What polars took without complaint but should not have: a null in place of a bar (read
    as a row of nulls) and JSON true/false (read as 1.0/0.0). Only rows of nulls and values of
    0.0 or 1.0 can hide these, and trade counts of 1 are common, so the raw values behind
    those are collected per field and scanned for booleans at C speed (a set of types)."""
    suspects = frame.select(
        pl.arg_where(pl.all_horizontal(pl.col(*RAW_SCHEMA).is_null())).implode().alias("bar"),
        *[pl.arg_where((pl.col(name) == 0) | (pl.col(name) == 1)).implode().alias(name) for name in NUMBER_FIELDS],
    ).row(0, named=True)
    problems = {row: "bar is not a JSON object" for row in suspects["bar"] if not isinstance(bars[row], dict)}
    for name in NUMBER_FIELDS:
        rows = suspects[name]
        values = [bars[row][name] for row in rows]
        if bool not in set(map(type, values)):
            continue
        for row, value in zip(rows, values, strict=True):
            if isinstance(value, bool):
                problems.setdefault(row, f"{name!r} is not a number: {json.dumps(value)}")
    return problems


def _typed_one_by_one(bars: list[Any]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    cleaned: list[dict[str, Any]] = []
    problems: dict[int, str] = {}
    for row, bar in enumerate(bars):
        if not isinstance(bar, dict):
            cleaned.append({})
            problems[row] = "bar is not a JSON object"
            continue
        stamp = bar.get("t")
        # As polars does on the fast path: a `t` that is not a string becomes its text,
        # which no timestamp format accepts, so it is rejected as unparseable either way.
        typed: dict[str, Any] = {"t": stamp if stamp is None or isinstance(stamp, str) else _shown(stamp)}
        found: list[str] = []
        for name in NUMBER_FIELDS:
            value = bar.get(name)
            try:
                typed[name] = _number(value)
            except (TypeError, ValueError, OverflowError):
                typed[name] = None
                found.append(f"{name!r} is not a number: {_shown(value)}")
        cleaned.append(typed)
        if found:
            problems[row] = "; ".join(found)
    return cleaned, problems


def _number(value: object) -> float | None:
    """Accepts what polars' fast path accepts (JSON numbers, numeric strings), except booleans."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("boolean")
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(type(value).__name__)


def _shown(value: object) -> str:
    return json.dumps(value, default=str)[:80]


def _timestamps(text: pl.Series) -> pl.Series:
    parsed = text.str.to_datetime(ALPACA_TIMESTAMP, time_unit="us", time_zone="UTC", strict=False, cache=False)
    if parsed.null_count() > text.null_count():
        # Alpaca writes whole seconds with a 'Z', which polars parses on a fast path; any
        # other RFC 3339 form (fractions, offsets) goes through the general parser.
        general = text.str.to_datetime(RFC3339_TIMESTAMP, time_unit="us", time_zone="UTC", strict=False, cache=False)
        parsed = parsed.fill_null(general)
    return parsed


def _checks() -> list[tuple[pl.Expr, pl.Expr]]:
    """(failed, reason) per check, in the order a bar's reason is chosen: the first that fails."""
    col = pl.col
    open_close_max = pl.max_horizontal("o", "c")
    open_close_min = pl.min_horizontal("o", "c")
    return [
        (col("problem").is_not_null(), col("problem")),
        *[(col(name).is_null(), pl.lit(f"missing field {name!r}")) for name in REQUIRED_FIELDS],
        (
            col("ts_event").is_null(),
            pl.format("unparseable timestamp 't' (RFC 3339 with a zone expected): {}", col("t")),
        ),
        *[
            (~col(name).is_finite(), pl.format(f"{name!r} is not a finite number: {{}}", col(name)))
            for name in NUMBER_FIELDS
        ],
        *[(col(name) <= 0, pl.format(f"non-positive price {name!r}: {{}}", col(name))) for name in PRICE_FIELDS],
        (col("h") < col("l"), pl.format("high {} < low {}", col("h"), col("l"))),
        (col("h") < open_close_max, pl.format("high {} < max(open {}, close {})", col("h"), col("o"), col("c"))),
        (col("l") > open_close_min, pl.format("low {} > min(open {}, close {})", col("l"), col("o"), col("c"))),
        (col("v") < 0, pl.format("negative volume {}", col("v"))),
        (
            (col("n") < 0) | (col("n") != col("n").floor()),
            pl.format("trade count 'n' is not a whole number >= 0: {}", col("n")),
        ),
        # The column is Int64: a larger count could not be cast and would fail the whole batch.
        (col("n") >= INT64_LIMIT, pl.format("trade count 'n' is beyond a 64-bit integer: {}", col("n"))),
        (col("vw") < 0, pl.format("negative vwap 'vw': {}", col("vw"))),
    ]


def _call(client: RESTClient, fetch: Callable[[], Any], what: str, stock_feed: str | None) -> dict[str, Any]:
    """The SDK's merged raw answer, or its failure as a typed FeedError with no secret in it."""
    secrets = [value for value in (client._api_key, client._secret_key) if value]
    try:
        raw = fetch()
    except FeedError as error:
        # HttpClient's, its retries spent or the wait too long: it names no key, and no chained
        # exception is shown with it.
        raise error from None
    except APIError as error:
        raise _api_failure(error, what, stock_feed, secrets) from None
    except requests.exceptions.JSONDecodeError:
        raise MalformedResponse(FEED, f"{what}: body is not JSON", _last_body(client, secrets)) from None
    except requests.RequestException as error:
        raise FeedUnavailable(FEED, f"{what}: {type(error).__name__}") from None
    except (ValueError, TypeError, AttributeError) as error:
        # alpaca-py's own shape checks: no known top-level key or several (ValueError), a
        # body that is empty or not an object, `bars` that is not an object (Type/AttributeError).
        message = _scrub(str(error), secrets)[:MAX_MESSAGE_CHARS]
        raise MalformedResponse(FEED, f"{what}: {message}", _last_body(client, secrets)) from None
    if not isinstance(raw, dict):
        raise TypeError(f"{type(client).__name__} returns models: build it with make_stock_client/make_crypto_client")
    return raw


def _api_failure(error: APIError, what: str, stock_feed: str | None, secrets: list[str]) -> FeedError:
    status = error.status_code
    body = _scrub(str(error), secrets)[:MAX_MESSAGE_CHARS].replace("\n", " ")
    if status in (401, 403):
        return FeedUnavailable(FEED, f"{what}: HTTP {status} {body}{_forbidden_hint(body, stock_feed)}")
    if status is not None and status >= 500:
        return FeedUnavailable(FEED, f"{what}: HTTP {status} {body}")
    return FeedError(FEED, f"{what}: HTTP {status} {body}")


def _forbidden_hint(body: str, stock_feed: str | None) -> str:
    if stock_feed is None:
        return " (check ALPACA_API_KEY and ALPACA_SECRET_KEY, or unset both: crypto data needs no keys)"
    if stock_feed != "iex" or "sip" in body.lower():
        return (
            " (the free data plan refuses SIP data of the last 15 minutes:"
            " use feed=iex, i.e. feeds.alpaca_data.stock_feed = 'iex')"
        )
    return " (check ALPACA_API_KEY and ALPACA_SECRET_KEY)"


def _last_body(client: RESTClient, secrets: list[str]) -> str:
    session = client._session
    if isinstance(session, _BoundedSession) and session.last_response is not None:
        return _scrub(session.last_response.text, secrets)[:MAX_PAYLOAD_CHARS]
    return ""


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _timeframe(name: str) -> TimeFrame:
    return TIMEFRAMES[_timeframe_name(name)]


def _timeframe_name(name: str) -> str:
    if name not in TIMEFRAMES:
        raise ValueError(f"unsupported timeframe {name!r}: expected one of {', '.join(TIMEFRAMES)}")
    return name


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware: {moment.isoformat()}")
