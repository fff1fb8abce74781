"""Every feed parser fed mutations of its recorded payloads.

Upstream answers drift: a key disappears, a number turns into a string or a null, a download
is cut off halfway, an HTML page gains stray markup. Whatever arrives, a parser must answer
with rows that meet its table's schema and its own promises, Rejected items that say why, or
its documented FeedError; any other exception would abort an ingestion run instead of
quarantining one bad item.

The mutations start from the files in tests/data, so they stay close to what the feeds really
send: close enough to get past a parser's first shape check and into its per-item reading.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import alpaca_data, binance, cme, github, macro_calendar, metal_premium, narrative, vol_credit
from adapters.bar_file import BarFile
from adapters.feed import FeedBatch, FeedError, MalformedResponse, Rejected
from adapters.table_file import TableFileError
from adapters.tables import TABLE_SCHEMAS

DATA = Path(__file__).resolve().parents[1] / "data"
INGESTED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# Recorded payloads date up to mid-2026; Binance refuses times more than a day past ingestion.
BINANCE_INGESTED = datetime(2024, 6, 3, tzinfo=UTC)

# Repeatable by default (tests/conftest.py); HYPOTHESIS_PROFILE=search with more examples looks further.
FUZZ = settings(
    max_examples=int(os.environ.get("HYDRA_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# pypdf is the slowest reader here; fewer examples keep the file's run time under a minute.
FUZZ_PDF = settings(FUZZ, max_examples=50)


def recorded_json(feed: str, name: str) -> Any:
    return json.loads((DATA / feed / name).read_text(encoding="utf-8"))


def recorded_text(feed: str, name: str) -> str:
    return (DATA / feed / name).read_text(encoding="utf-8")


# --- mutations ------------------------------------------------------------------------------

# Values that have broken parsers before: wrong types, non-finite and out-of-range numbers,
# numeric-looking strings, and text no parser expects.
NASTY_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    10**400,
    1e308,
    -0.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    " ",
    "NaN",
    "Infinity",
    "-1",
    "1e999",
    "0x10",
    "١٢٣",
    "2024-02-30",
    "99999999999999999999999",
    "\x00",
    "💥",
    [],
    {},
]

scalars = st.one_of(
    st.sampled_from(NASTY_VALUES),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
garbage = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
# Any character that UTF-8 can encode (no lone surrogates): what a decoded HTTP body can hold.
random_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def _tweaked(draw: st.DrawFn, value: Any) -> Any:
    """A near miss of a scalar: the kind of damage a format change or a bad print does."""
    if isinstance(value, str) and value:
        at = draw(st.integers(0, len(value) - 1))
        return draw(
            st.sampled_from(
                [
                    value[:at] + value[at + 1 :],
                    value[:at] + draw(random_text) + value[at:],
                    value[:at] + draw(st.sampled_from("0159-/.:,eT ")) + value[at + 1 :],
                    value[:at],
                    value + value,
                ]
            )
        )
    # Beyond 1e300 a tweak could overflow float arithmetic here, in the test; garbage covers those.
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e300:
        return draw(st.sampled_from([-value, str(value), value * 10**6, value / 1000, value + 0.5]))
    return draw(garbage)


@st.composite
def _mutated_once(draw: st.DrawFn, value: Any) -> Any:
    path = draw(st.sampled_from(list(_paths(value))))
    node = _at(value, path)
    operations = ["replace", "tweak"]
    if isinstance(node, dict) and node:
        operations += ["drop key", "add key", "drop key"]
    if isinstance(node, list) and node:
        operations += ["drop item", "duplicate item", "truncate", "shuffle", "append garbage"]
    operation = draw(st.sampled_from(operations))
    if operation == "replace":
        new = draw(garbage)
    elif operation == "tweak":
        new = draw(_tweaked(node))
    elif operation == "drop key":
        key = draw(st.sampled_from(sorted(node, key=str)))
        new = {name: child for name, child in node.items() if name != key}
    elif operation == "add key":
        new = {**node, draw(st.text(max_size=8)): draw(garbage)}
    elif operation == "drop item":
        index = draw(st.integers(0, len(node) - 1))
        new = node[:index] + node[index + 1 :]
    elif operation == "duplicate item":
        index = draw(st.integers(0, len(node) - 1))
        new = [*node[: index + 1], copy.deepcopy(node[index]), *node[index + 1 :]]
    elif operation == "truncate":
        new = node[: draw(st.integers(0, len(node) - 1))]
    elif operation == "shuffle":
        new = draw(st.permutations(node))
    else:
        new = [*node, draw(garbage)]
    if not path:
        return new
    _at(value, path[:-1])[path[-1]] = new
    return value


@st.composite
def mutated_json(draw: st.DrawFn, seed: Any, max_mutations: int = 4) -> Any:
    """`seed` with one to `max_mutations` structural mutations anywhere in it, root included."""
    value = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, max_mutations))):
        value = draw(_mutated_once(value))
    return value


@st.composite
def mutated_text(draw: st.DrawFn, seed: str, max_mutations: int = 4) -> str:
    """`seed` with lines deleted, duplicated or swapped, cut short, stray text, or a digit changed."""
    text = seed
    for _ in range(draw(st.integers(1, max_mutations))):
        lines = text.splitlines(keepends=True) or [""]
        operation = draw(
            st.sampled_from(["delete line", "duplicate line", "swap lines", "truncate", "insert", "digit"])
        )
        if operation in ("delete line", "duplicate line", "swap lines"):
            first = draw(st.integers(0, len(lines) - 1))
            second = draw(st.integers(0, len(lines) - 1))
            if operation == "delete line":
                del lines[first]
            elif operation == "duplicate line":
                lines.insert(first, lines[first])
            else:
                lines[first], lines[second] = lines[second], lines[first]
            text = "".join(lines)
        elif operation == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
        elif operation == "insert":
            at = draw(st.integers(0, len(text)))
            text = (
                text[:at] + draw(random_text | st.sampled_from(["\n", "\r", "<", ">", '"', ":", ";", ","])) + text[at:]
            )
        else:
            digits = [index for index, char in enumerate(text) if char.isdigit()]
            if digits:
                at = draw(st.sampled_from(digits))
                text = text[:at] + draw(st.sampled_from("0123456789x-/.:")) + text[at + 1 :]
    return text


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes, max_mutations: int = 3) -> bytes:
    """`seed` with bytes changed, a span deleted or repeated, or cut short: a damaged download."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_mutations))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        span = draw(st.integers(1, 64))
        operation = draw(st.sampled_from(["flip", "delete", "repeat", "truncate"]))
        if operation == "flip":
            data[at] = draw(st.integers(0, 255))
        elif operation == "delete":
            del data[at : at + span]
        elif operation == "repeat":
            data[at:at] = data[at : at + span]
        else:
            del data[at:]
    return bytes(data)


# --- properties -----------------------------------------------------------------------------


def parsed(parse: Callable[[], Any], error: type[FeedError] = MalformedResponse) -> Any:
    """What `parse` returns, or None when it raised its documented error: never anything else."""
    try:
        return parse()
    except error as raised:
        assert str(raised)
        if isinstance(raised, MalformedResponse):
            assert isinstance(raised.payload, str)
        return None


def check_rejected(rejected: list[Rejected]) -> None:
    for item in rejected:
        assert isinstance(item, Rejected)
        assert isinstance(item.reason, str) and item.reason.strip(), item
        assert isinstance(item.payload, str), item


def check_batch(batch: FeedBatch, table: str) -> pl.DataFrame:
    """The batch's rows of `table`, after checking they have its exact columns and types."""
    assert isinstance(batch, FeedBatch)
    assert set(batch.tables) == {table}
    frame = batch.tables[table]
    assert list(frame.schema.items()) == list(TABLE_SCHEMAS[table].items())
    check_rejected(batch.rejected)
    return frame


def all_finite(frame: pl.DataFrame) -> bool:
    floats = [name for name, dtype in frame.schema.items() if dtype == pl.Float64]
    return all(value is None or math.isfinite(value) for name in floats for value in frame[name])


def no_nulls(frame: pl.DataFrame, *columns: str) -> bool:
    return all(frame[name].null_count() == 0 for name in columns)


# --- Alpaca bars ----------------------------------------------------------------------------

ALPACA_SEEDS = [
    recorded_json("alpaca_data", name)["bars"]
    for name in ("stocks_1day.json", "crypto_1min.json", "stocks_1min_page1.json", "stocks_bad_bars.json")
]


@FUZZ
@given(st.sampled_from(ALPACA_SEEDS).flatmap(lambda seed: st.tuples(st.just(sorted(seed)), mutated_json(seed))))
def test_alpaca_bars_load_valid_or_are_rejected_one_for_one(case: tuple[list[str], Any]) -> None:
    requested, raw = case
    if not isinstance(raw, dict):
        # The SDK hands parse_bars its merged dict; _call refuses anything else before.
        raw = {"SPY": raw}
    batch = alpaca_data.parse_bars(raw, requested, "1Min", "alpaca-iex", INGESTED)
    bars = check_batch(batch, "bars")
    assert all_finite(bars)
    assert no_nulls(bars, "symbol", "ts_event", "open", "high", "low", "close", "volume")
    assert bars.filter(
        (pl.col("low") <= 0)
        | (pl.col("high") < pl.max_horizontal("open", "close", "low"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("volume") < 0)
        | (pl.col("trade_count") < 0)
        | (pl.col("vwap") < 0)
    ).is_empty()
    assert set(bars["symbol"]) <= set(requested)
    # Each bar of a requested symbol is a row or a Rejected; any other entry is one Rejected.
    expected = sum(
        len(entry) if symbol in requested and isinstance(entry, list) else 1 for symbol, entry in raw.items()
    )
    assert bars.height + len(batch.rejected) == expected


# --- Binance --------------------------------------------------------------------------------

BINANCE_LISTS = {
    "funding_rates": [
        recorded_json("binance", name)
        for name in ("funding_rate_btcusdt.json", "funding_rate_bad_items.json", "funding_rate_btcusdt_2019.json")
    ],
    "open_interest_history": [
        recorded_json("binance", name)
        for name in ("open_interest_hist_btcusdt.json", "open_interest_hist_btcusdt_string_timestamp.json")
    ],
}


def check_binance(batch: FeedBatch, table: str, items: int) -> pl.DataFrame:
    frame = check_batch(batch, table)
    assert all_finite(frame)
    assert no_nulls(frame, "venue", "symbol", "ts_event", "ts_ingested")
    assert (frame["ts_event"] >= binance.EARLIEST_EVENT).all()
    # Binance's parsers read every item on its own: each is a row or a Rejected.
    assert frame.height + len(batch.rejected) == items
    return frame


@FUZZ
@given(st.sampled_from(BINANCE_LISTS["funding_rates"]).flatmap(mutated_json))
def test_binance_funding_rates(payload: Any) -> None:
    batch = parsed(lambda: binance.parse_funding_rates(payload, BINANCE_INGESTED))
    if batch is None:
        assert not isinstance(payload, list)
        return
    rates = check_binance(batch, "funding_rates", len(payload))
    assert (rates["funding_rate"].abs() <= binance.MAX_ABS_FUNDING_RATE).all()
    assert not (rates["mark_price"] <= 0).any()


@FUZZ
@given(mutated_json(recorded_json("binance", "premium_index_btcusdt.json")))
def test_binance_premium_index(payload: Any) -> None:
    batch = parsed(lambda: binance.parse_premium_index(payload, BINANCE_INGESTED))
    if batch is None:
        assert not isinstance(payload, dict | list)
        return
    items = 1 if isinstance(payload, dict) else len(payload)
    index = check_binance(batch, "premium_index", items)
    assert (index["mark_price"] > 0).all()
    assert not (index["index_price"] <= 0).any()


@FUZZ
@given(mutated_json(recorded_json("binance", "open_interest_btcusdt.json")))
def test_binance_open_interest(payload: Any) -> None:
    batch = parsed(lambda: binance.parse_open_interest(payload, BINANCE_INGESTED))
    if batch is None:
        assert not isinstance(payload, dict)
        return
    interest = check_binance(batch, "open_interest", 1)
    assert (interest["open_interest"] >= 0).all()
    assert (interest["period"] == binance.SPOT_PERIOD).all()


@FUZZ
@given(st.sampled_from(BINANCE_LISTS["open_interest_history"]).flatmap(mutated_json))
def test_binance_open_interest_history(payload: Any) -> None:
    batch = parsed(lambda: binance.parse_open_interest_history(payload, "5m", BINANCE_INGESTED))
    if batch is None:
        assert not isinstance(payload, list)
        return
    interest = check_binance(batch, "open_interest", len(payload))
    assert (interest["open_interest"] >= 0).all()
    assert not (interest["open_interest_value"] < 0).any()


# --- CME ------------------------------------------------------------------------------------

CME_MARGIN_SEEDS = [
    recorded_json("cme", name)
    for name in (
        "margins_gc_2026-03-02.json",
        "margins_gc_dirty.json",
        "margins_gc_percent.json",
        "margins_si_2026-03-04.json",
    )
]
ADVISORY_URL = "https://www.cmegroup.com/notices/clearing/2020/06/Chadv20-239.html"
ADVISORY_SEEDS = [recorded_text("cme", name) for name in ("Chadv20-239.html", "Chadv26-071.html")]
PDF_ONLY_URL = "https://www.cmegroup.com/notices/clearing/2020/06/Chadv20-236.html"
PDF_ONLY_PAGE = recorded_text("cme", "Chadv20-236_pdf_only.html")
PDF_SEEDS = [(DATA / "cme" / name).read_bytes() for name in ("Chadv20-236.pdf", "Chadv26-080.pdf")]


def check_notices(batch: FeedBatch) -> None:
    notices = check_batch(batch, "margin_notices")
    assert all_finite(notices)
    assert no_nulls(notices, "notice_id", "product", "rate_type", "tier", "ts_event", "unit", "new_maintenance")
    assert (notices["new_maintenance"] > 0).all()
    assert not (notices["change_pct"].abs() > cme.MAX_ABS_CHANGE_PCT).any()
    assert set(notices["product"]) <= set(cme.DEFAULT_PRODUCTS)


@FUZZ
@given(st.sampled_from(CME_MARGIN_SEEDS).flatmap(mutated_json))
def test_cme_margin_rates(payload: Any) -> None:
    batch = parsed(lambda: cme.parse_margin_rates(payload, observed_at=INGESTED, ingested_at=INGESTED))
    if batch is None:
        assert not (isinstance(payload, dict) and isinstance(payload.get("marginRates"), list))
        return
    rates = check_batch(batch, "margin_rates")
    assert all_finite(rates)
    assert no_nulls(rates, "exchange", "clearing_code", "start_period", "maintenance_rate", "unit", "ts_event")
    assert (rates["maintenance_rate"] > 0).all()
    assert set(rates["unit"]) <= {cme.UNIT_USD, cme.UNIT_PCT}
    assert not ((rates["unit"] == cme.UNIT_PCT) & (rates["maintenance_rate"] > 100)).any()
    assert rates.select("exchange", "clearing_code", "start_period").is_unique().all()
    # Other products are skipped and identical duplicates merged: at most one outcome per item.
    assert rates.height + len(batch.rejected) <= len(payload["marginRates"])


@FUZZ
@given(st.sampled_from(ADVISORY_SEEDS).flatmap(mutated_text))
def test_cme_advisory_page(html: str) -> None:
    batch = parsed(lambda: cme.parse_advisory(html, url=ADVISORY_URL, ingested_at=INGESTED))
    if batch is not None:
        check_notices(batch)


@FUZZ_PDF
@given(st.sampled_from(PDF_SEEDS).flatmap(mutated_bytes))
def test_cme_advisory_pdf(pdf: bytes) -> None:
    batch = cme.parse_advisory(PDF_ONLY_PAGE, url=PDF_ONLY_URL, ingested_at=INGESTED, fetch_pdf=lambda _: pdf)
    check_notices(batch)


# --- GitHub ---------------------------------------------------------------------------------

RELEASE_SEEDS = [
    recorded_json("github", name)
    for name in ("releases_page1.json", "releases_page2.json", "releases_bad_published_at.json")
]


@FUZZ
@given(st.sampled_from(RELEASE_SEEDS).flatmap(mutated_json))
def test_github_releases(payload: Any) -> None:
    if not isinstance(payload, list):
        # fetch_releases raises MalformedResponse for a page that is not an array before parsing.
        payload = [payload]
    batch = github.parse_releases("openai/openai-python", payload, ingested_at=INGESTED)
    releases = check_batch(batch, "github_releases")
    assert no_nulls(releases, "repo", "release_id", "tag_name", "draft", "prerelease", "ts_event", "ts_ingested")
    assert not releases["draft"].any()
    assert (releases["tag_name"].str.len_chars() > 0).all()
    # Drafts are skipped, not rejected.
    assert releases.height + len(batch.rejected) <= len(payload)


@FUZZ
@given(mutated_json(recorded_json("github", "repo.json")))
def test_github_repo_stats(payload: Any) -> None:
    batch = parsed(
        lambda: github.parse_repo_stats("openai/openai-python", payload, observed_at=INGESTED, ingested_at=INGESTED)
    )
    if batch is None:
        return
    stats = check_batch(batch, "repo_stats")
    assert stats.height == 1
    assert no_nulls(stats, "stars", "forks")
    assert stats.select((pl.col("stars", "forks", "open_issues", "watchers") >= 0).fill_null(True)).to_series().all()
    assert not batch.rejected


# --- macro calendar -------------------------------------------------------------------------

BLS_SEEDS = [recorded_text("macro_calendar", name) for name in ("bls.ics", "bls_bad_events.ics")]
FRED_DATES_SEEDS = [
    recorded_json("macro_calendar", name) for name in ("fred_release_dates_10.json", "fred_release_dates_50.json")
]


def check_events(batch: FeedBatch) -> pl.DataFrame:
    events = check_batch(batch, "economic_events")
    assert no_nulls(events, "source", "event_type", "ts_event", "title", "importance", "all_day", "ts_ingested")
    assert (events["title"].str.strip_chars().str.len_chars() > 0).all()
    assert events["importance"].is_in([1, 2, 3]).all()
    return events


@FUZZ
@given(st.sampled_from(BLS_SEEDS).flatmap(mutated_text))
def test_bls_calendar(text: str) -> None:
    batch = parsed(lambda: macro_calendar.parse_bls_ics(text, INGESTED))
    if batch is not None:
        check_events(batch)


@FUZZ
@given(mutated_text(recorded_text("macro_calendar", "fomccalendars.htm")))
def test_fomc_calendar(html: str) -> None:
    batch = parsed(lambda: macro_calendar.parse_fomc_html(html, INGESTED))
    if batch is not None:
        events = check_events(batch)
        assert (events["event_type"] == "FOMC").all()


@FUZZ
@given(st.sampled_from(FRED_DATES_SEEDS).flatmap(mutated_json))
def test_fred_release_dates(payload: Any) -> None:
    batch = parsed(lambda: macro_calendar.parse_fred_release_dates(payload, INGESTED))
    if batch is None:
        assert not (isinstance(payload, dict) and isinstance(payload.get("release_dates"), list))
        return
    events = check_events(batch)
    assert events.height + len(batch.rejected) == len(payload["release_dates"])


# --- metal premium --------------------------------------------------------------------------

SGE_SEEDS = [recorded_json("metal_premium", name) for name in ("sge_dayily_jzj.json", "sge_dayily_jzj_dirty.json")]


def positive_finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@FUZZ
@given(st.sampled_from(SGE_SEEDS).flatmap(mutated_json))
def test_sge_benchmark(payload: Any) -> None:
    result = parsed(lambda: metal_premium.parse_sge_benchmark(payload))
    if result is None:
        return
    fixings, rejected = result
    check_rejected(rejected)
    assert all(positive_finite(fixing.cny_per_gram) for fixing in fixings)
    assert all(isinstance(fixing.fixing_date, date) and fixing.session in ("AM", "PM") for fixing in fixings)
    keys = [(fixing.fixing_date, fixing.session) for fixing in fixings]
    assert keys == sorted(set(keys))
    # A repeat of a point at the same price is merged silently: at most one outcome per point.
    assert len(fixings) + len(rejected) <= len(payload["zp"]) + len(payload["wp"])
    for fixing in fixings:
        assert fixing.ts_event.tzinfo is not None


@FUZZ
@given(mutated_json(recorded_json("metal_premium", "lbma_gold_pm.json")))
def test_lbma_gold_pm(payload: Any) -> None:
    result = parsed(lambda: metal_premium.parse_lbma_gold_pm(payload))
    if result is None:
        assert not isinstance(payload, list)
        return
    prices, rejected = result
    check_rejected(rejected)
    assert all(isinstance(day, date) and positive_finite(price) for day, price in prices.items())
    assert len(prices) + len(rejected) <= len(payload)


# --- narrative ------------------------------------------------------------------------------

FEED_SEEDS = [recorded_text("narrative", name) for name in ("techcrunch_ai.rss", "anthropic_news.atom")]
MATCHER = narrative.HeadlineMatcher.for_watchlist(["NVDA", "MSFT", "GOOGL", "BTC/USD"])


@FUZZ
@given(st.sampled_from(FEED_SEEDS).flatmap(mutated_text))
def test_rss_and_atom_feeds(text: str) -> None:
    content = text.encode("utf-8")
    batch = parsed(lambda: narrative.parse_feed("techcrunch", content, ingested_at=INGESTED, matcher=MATCHER))
    if batch is None:
        return
    headlines = check_batch(batch, "headlines")
    assert no_nulls(headlines, "source", "item_id", "ts_event", "title", "matched_tickers", "matched_labs")
    assert (headlines["title"].str.len_chars() > 0).all()
    # Every entry feedparser finds is a headline or a Rejected.
    assert headlines.height + len(batch.rejected) == len(feedparser.parse(content).entries)


# --- volatility and credit ------------------------------------------------------------------

FRED_OBSERVATION_SEEDS = {
    "VIXCLS": recorded_json("vol_credit", "fred_vixcls.json"),
    "BAMLH0A0HYM2": recorded_json("vol_credit", "fred_bamlh0a0hym2.json"),
}


@FUZZ
@given(mutated_text(recorded_text("vol_credit", "VIX_History.csv")))
def test_cboe_vix(text: str) -> None:
    batch = parsed(lambda: vol_credit.parse_cboe_vix(text, None, INGESTED))
    if batch is None:
        return
    series = check_batch(batch, "market_series")
    assert all_finite(series)
    assert no_nulls(series, "series", "ts_event", "value")
    assert (series["value"] >= 0).all()
    # Without `since` every line after the header is a row or a Rejected.
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    assert series.height + len(batch.rejected) == len(lines) - 1


@FUZZ
@given(
    st.sampled_from(sorted(FRED_OBSERVATION_SEEDS)).flatmap(
        lambda key: st.tuples(st.just(key), mutated_json(FRED_OBSERVATION_SEEDS[key]))
    )
)
def test_fred_observations(case: tuple[str, Any]) -> None:
    series_id, payload = case
    batch = parsed(lambda: vol_credit.parse_fred_observations(payload, series_id, INGESTED))
    if batch is None:
        assert not (isinstance(payload, dict) and isinstance(payload.get("observations"), list))
        return
    series = check_batch(batch, "market_series")
    assert all_finite(series)
    assert no_nulls(series, "series", "ts_event", "value")
    if vol_credit.FRED_SERIES[series_id].non_negative:
        assert (series["value"] >= 0).all()
    # FRED's "." marks a day without a value: skipped, neither a row nor a Rejected.
    items = payload["observations"]
    assert series.height + len(batch.rejected) <= len(items)


# --- bar files ------------------------------------------------------------------------------


def _bar_file_seed() -> pl.DataFrame:
    """Recorded Alpaca bars as a user's own file would hold them."""
    frames = []
    for name in ("stocks_1day.json", "crypto_1min.json"):
        for symbol, bars in recorded_json("alpaca_data", name)["bars"].items():
            timeframe = "1Day" if "1day" in name else "1Min"
            frames.append(
                pl.DataFrame(bars).select(
                    pl.lit(symbol).alias("symbol"),
                    pl.lit(timeframe).alias("timeframe"),
                    pl.col("t").alias("timestamp"),
                    pl.col("o").alias("Open"),
                    pl.col("h").alias("high"),
                    pl.col("l").alias("low"),
                    pl.col("c").alias("close"),
                    pl.col("v").cast(pl.Float64).alias("volume"),
                    pl.col("n").alias("trade_count"),
                    pl.col("vw").alias("vwap"),
                )
            )
    return pl.concat(frames)


def read_bar_chunks(path: Path) -> list[FeedBatch]:
    """Every chunk of a bar file, small chunks so that chunk boundaries are fuzzed too."""
    return list(BarFile.survey(path, rows=3).chunks(rows=3))


BAR_FILE_CSV = _bar_file_seed().write_csv()
BAR_FILE_PARQUET = io.BytesIO()
_bar_file_seed().with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC")).write_parquet(BAR_FILE_PARQUET)


@FUZZ
@given(mutated_text(BAR_FILE_CSV))
def test_bar_file_csv(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("bars") / "mine.csv"
    path.write_text(text, encoding="utf-8")
    for batch in parsed(lambda: read_bar_chunks(path), TableFileError) or []:
        check_batch(batch, "bars")


@FUZZ
@given(mutated_bytes(BAR_FILE_PARQUET.getvalue()))
def test_bar_file_parquet(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("bars") / "mine.parquet"
    path.write_bytes(content)
    for batch in parsed(lambda: read_bar_chunks(path), TableFileError) or []:
        check_batch(batch, "bars")


# --- inputs the fuzzing found ---------------------------------------------------------------
# Each escaped its parser as an exception before the fix; kept as plain examples so that they
# are tried on every run, whatever the random search happens to draw.


def test_an_alpaca_trade_count_beyond_int64_rejects_its_bar_only() -> None:
    good, huge = copy.deepcopy(ALPACA_SEEDS[0]["SPY"])
    huge["n"] = 2**63
    batch = alpaca_data.parse_bars({"SPY": [good, huge]}, ["SPY"], "1Day", "alpaca-iex", INGESTED)
    assert batch.tables["bars"]["trade_count"].to_list() == [good["n"]]
    [rejected] = batch.rejected
    assert rejected.reason.startswith("trade count 'n' is beyond a 64-bit integer")


def test_a_github_release_id_beyond_int64_rejects_that_release_only() -> None:
    page = copy.deepcopy(RELEASE_SEEDS[1])
    page[0]["id"] = 10**20
    batch = github.parse_releases("openai/openai-python", page, ingested_at=INGESTED)
    assert batch.tables["github_releases"].height == len(page) - 1
    [rejected] = batch.rejected
    assert "is not a positive 64-bit integer" in rejected.reason


def test_a_github_star_count_beyond_int64_is_a_malformed_answer() -> None:
    payload = {**recorded_json("github", "repo.json"), "stargazers_count": 2**63}
    with pytest.raises(MalformedResponse, match="stargazers_count is missing or not a count"):
        github.parse_repo_stats("openai/openai-python", payload, observed_at=INGESTED, ingested_at=INGESTED)


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        ([10**20, 480.0], "millisecond timestamp out of range"),  # OSError from the platform's time_t
        ([10**23, 480.0], "millisecond timestamp out of range"),  # OverflowError
        ([1704124800000, 10**400], "price is out of range"),  # OverflowError from float()
    ],
)
def test_an_sge_point_out_of_range_is_rejected(point: list[int | float], reason: str) -> None:
    fixings, rejected = metal_premium.parse_sge_benchmark({"zp": [[1704124800000, 482.52], point], "wp": []})
    assert [fixing.cny_per_gram for fixing in fixings] == [482.52]
    [item] = rejected
    assert reason in item.reason


def test_an_lbma_price_too_large_for_a_float_is_rejected() -> None:
    payload = [{"d": "2024-01-02", "v": [2064.4]}, {"d": "2024-01-03", "v": [10**400]}]
    prices, rejected = metal_premium.parse_lbma_gold_pm(payload)
    assert prices == {date(2024, 1, 2): 2064.4}
    [item] = rejected
    assert "price is out of range" in item.reason


def test_a_parquet_file_that_makes_polars_panic_is_refused(tmp_path: Path) -> None:
    damaged = bytearray(BAR_FILE_PARQUET.getvalue())
    # Found by test_bar_file_parquet: this byte lies in a column chunk, and zeroing it trips an
    # assertion in polars' decoder, raised as pyo3's PanicException, a BaseException.
    damaged[106] = 0
    path = tmp_path / "damaged.parquet"
    path.write_bytes(bytes(damaged))
    with pytest.raises(TableFileError, match="unreadable"):
        read_bar_chunks(path)


def test_a_parquet_column_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    # Found by test_bar_file_parquet: pyarrow raised UnicodeDecodeError reading the schema.
    path = tmp_path / "bad_name.parquet"
    path.write_bytes(BAR_FILE_PARQUET.getvalue().replace(b"\x04Open", b"\x04\x80pen"))
    with pytest.raises(TableFileError, match="unreadable: 'utf-8' codec can't decode"):
        read_bar_chunks(path)


def test_a_namespace_uri_with_a_space_like_character_is_a_malformed_feed() -> None:
    # Found by the random search: feedparser itself raised ValueError on this namespace.
    text = FEED_SEEDS[0].replace('xmlns:dc="http://', 'xmlns:dc="h\xa0ttp://', 1)
    with pytest.raises(MalformedResponse, match="unreadable XML"):
        narrative.parse_feed("techcrunch", text.encode("utf-8"), ingested_at=INGESTED, matcher=MATCHER)
