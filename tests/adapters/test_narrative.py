"""Narrative feeds (recorded RSS 2.0 and Atom served locally) and narrative velocity."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from adapters.feed import FeedUnavailable, MalformedResponse
from adapters.http import HttpClient
from adapters.narrative import HEADLINES_SCHEMA, HeadlineMatcher, NarrativeClient, narrative_velocity, parse_feed
from core.config import DEFAULT_WATCHLIST
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

DATA = Path(__file__).resolve().parent.parent / "data" / "narrative"
NOW = datetime(2025, 8, 5, 18, 0, tzinfo=UTC)
MATCHER = HeadlineMatcher.for_watchlist(DEFAULT_WATCHLIST)
MIXED_TITLE = "Mistral AI raises again as Salesforce, Adobe and MSFT eye the ADBE-CRM space"


def recorded(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def client(httpserver: HTTPServer) -> NarrativeClient:
    http = HttpClient(
        feed="narrative",
        base_url=httpserver.url_for("").rstrip("/"),
        user_agent="HYDRA-test/1.0 (ops@example.com)",
        backoff_s=0.01,
        max_wait_s=2,
    )
    return NarrativeClient(http, MATCHER, source_labs={"openai-news": "openai", "anthropic-news": "anthropic"})


def serve(httpserver: HTTPServer, path: str, name: str, content_type: str) -> str:
    httpserver.expect_request(path).respond_with_data(recorded(name), content_type=content_type)
    return httpserver.url_for(path)


def test_rss_headlines_with_tickers_and_labs(httpserver: HTTPServer, client: NarrativeClient) -> None:
    url = serve(httpserver, "/category/artificial-intelligence/feed/", "techcrunch_ai.rss", "application/rss+xml")

    batch = client.fetch_feed("techcrunch-ai", url, now=NOW)

    (request, _), *_ = httpserver.log
    assert request.headers["User-Agent"] == "HYDRA-test/1.0 (ops@example.com)"
    headlines = batch.tables["headlines"]
    assert headlines.schema == pl.Schema(HEADLINES_SCHEMA)
    assert headlines.drop("source", "ts_ingested").rows() == [
        (
            "https://techcrunch.com/?p=3034119",
            datetime(2025, 8, 5, 17, 30, tzinfo=UTC),
            "OpenAI launches an agent that files paperwork, and LegalZoom shares slide",
            "https://techcrunch.com/2025/08/05/openai-launches-an-agent-that-files-paperwork/",
            ["LZ"],  # the description names Salesforce and Adobe: titles only are matched
            ["openai"],
        ),
        (
            "https://techcrunch.com/?p=3034088",
            datetime(2025, 8, 5, 15, 2, 11, tzinfo=UTC),
            "Anthropic’s Claude now builds Shopify storefronts; SHOP, CRM and IGV react",
            "https://techcrunch.com/2025/08/05/anthropics-claude-now-builds-shopify-storefronts/",
            ["CRM", "IGV", "SHOP"],
            ["anthropic"],
        ),
        (
            "https://techcrunch.com/2025/08/04/microsoft-and-workday-bet-on-gemini-and-llama/",
            datetime(2025, 8, 4, 9, 45, tzinfo=UTC),
            "Microsoft and Workday bet on Gemini and Llama; a mistral wind blows over SHOPPING malls",
            "https://techcrunch.com/2025/08/04/microsoft-and-workday-bet-on-gemini-and-llama/",
            ["MSFT", "WDAY"],
            ["google-deepmind", "meta-llama"],
        ),
        (
            "sha256:" + hashlib.sha256(MIXED_TITLE.encode()).hexdigest(),
            datetime(2025, 8, 4, 4, 0, tzinfo=UTC),  # Sun, 03 Aug 2025 21:00:00 -0700
            MIXED_TITLE,
            None,
            ["ADBE", "CRM", "MSFT"],
            ["mistralai"],
        ),
    ]
    assert set(headlines.get_column("source")) == {"techcrunch-ai"}
    assert set(headlines.get_column("ts_ingested")) == {NOW}
    [undated] = batch.rejected
    assert undated.reason == "techcrunch-ai: entry has no parseable published or updated date"
    assert "Undated: a story the feed forgot to date" in undated.payload


def test_atom_headlines_of_a_lab_feed_carry_the_lab(httpserver: HTTPServer, client: NarrativeClient) -> None:
    url = serve(httpserver, "/rss.xml", "anthropic_news.atom", "application/atom+xml")

    batch = client.fetch_feed("anthropic-news", url, now=NOW)

    assert batch.tables["headlines"].drop("ts_ingested").rows() == [
        (
            "anthropic-news",
            "https://www.anthropic.com/news/claude-opus-4-1",
            datetime(2025, 8, 5, 16, 0, tzinfo=UTC),  # published, not the later updated
            "Claude Opus 4.1",
            "https://www.anthropic.com/news/claude-opus-4-1",
            [],
            ["anthropic"],
        ),
        (
            "anthropic-news",
            "tag:anthropic.com,2025-07-29:/news/enterprise-agents",
            datetime(2025, 7, 29, 11, 30, tzinfo=UTC),  # only <updated>, at +02:00
            "Enterprise agents for Salesforce and Workday customers",
            "https://www.anthropic.com/news/enterprise-agents",
            ["CRM", "WDAY"],
            ["anthropic"],
        ),
    ]
    [untitled] = batch.rejected
    assert untitled.reason == "anthropic-news: entry has no title"
    assert "https://www.anthropic.com/news/untitled" in untitled.payload


@pytest.mark.parametrize(
    "content",
    [
        recorded("malformed.rss"),
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>",
        b"",
    ],
    ids=["truncated-xml", "html-challenge-page", "empty"],
)
def test_a_document_that_is_no_feed_is_malformed(content: bytes) -> None:
    with pytest.raises(MalformedResponse) as caught:
        parse_feed("techcrunch-ai", content, ingested_at=NOW, matcher=MATCHER)

    assert caught.value.payload == content.decode()
    assert str(caught.value).startswith("narrative: techcrunch-ai: ")


def test_an_empty_but_valid_feed_yields_no_rows() -> None:
    content = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'

    batch = parse_feed("quiet", content, ingested_at=NOW, matcher=MATCHER)

    assert batch.row_count == 0
    assert batch.rejected == []


def test_a_refused_feed_is_unavailable(httpserver: HTTPServer, client: NarrativeClient) -> None:
    httpserver.expect_request("/feed").respond_with_data("Forbidden", status=403)

    with pytest.raises(FeedUnavailable):
        client.fetch_feed("techcrunch-ai", httpserver.url_for("/feed"), now=NOW)


@pytest.mark.parametrize(
    ("title", "tickers", "labs"),
    [
        ("$CRM and (SHOP) rally; ADBE's guidance", ["ADBE", "CRM", "SHOP"], []),
        ("Shopping for a crm: salesforce and adobe in lower case", [], []),
        ("LZW compression and LZ77; SPYWARE", [], []),
        ("LZ and SPY fall", ["LZ", "SPY"], []),
        ("BTC/USD jumps as BTC trends", [], []),
        ("Meta AI ships Llama 4; LlamaIndex and Gemini-powered DeepMind tools", [], ["google-deepmind", "meta-llama"]),
        ("ChatGPT vs Claude vs Le Chat", [], ["anthropic", "mistralai", "openai"]),
        ("OpenAIs and Anthropics are not words", [], []),
    ],
)
def test_matching_is_whole_word_and_case_sensitive(title: str, tickers: list[str], labs: list[str]) -> None:
    assert MATCHER.tickers_in(title) == tickers
    assert MATCHER.labs_in(title) == labs


def test_company_names_only_map_to_watched_tickers() -> None:
    matcher = HeadlineMatcher.for_watchlist(["CRM", "BTC/USD"])

    assert matcher.tickers == ("CRM",)
    assert matcher.tickers_in("Salesforce, Adobe and Microsoft") == ["CRM"]


def test_headlines_load_twice_into_a_fresh_warehouse_with_the_same_counts(tmp_path: Path) -> None:
    batch = parse_feed("techcrunch-ai", recorded("techcrunch_ai.rss"), ingested_at=NOW, matcher=MATCHER)
    batch.extend(
        parse_feed(
            "anthropic-news",
            recorded("anthropic_news.atom"),
            ingested_at=NOW,
            matcher=MATCHER,
            source_lab="anthropic",
        )
    )
    warehouse = Warehouse(tmp_path / "w.duckdb")
    migrate(warehouse)

    first = upsert(warehouse, batch.tables)
    second = upsert(warehouse, batch.tables)

    assert first == second == {"headlines": 6}
    with warehouse.connect() as con:
        count = con.execute("SELECT count(*) FROM headlines").fetchone()
        tagged = con.execute(
            "SELECT matched_tickers, matched_labs FROM headlines WHERE item_id = ?",
            ["https://techcrunch.com/?p=3034088"],
        ).fetchone()
    assert count == (6,)
    assert tagged == (["CRM", "IGV", "SHOP"], ["anthropic"])


# narrative_velocity: as_of 2025-08-05 00:00, window 1 day, baseline 4 days, so the recent
# window is (Aug 4 00:00, Aug 5 00:00], the baseline (Jul 31 00:00, Aug 4 00:00], and the
# baseline count scales to the window by 1/4.
AS_OF = datetime(2025, 8, 5, tzinfo=UTC)
WINDOW = timedelta(days=1)
BASELINE = timedelta(days=4)


def at(day: int, hour: int = 0, month: int = 8) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


def releases_frame() -> pl.DataFrame:
    openai = "openai/openai-python"
    rows = [
        (openai, at(4, 6), at(4, 6)),
        (openai, at(4, 12), at(4, 12)),
        (openai, at(5), at(5)),  # on as_of: recent
        (openai, at(1, 12), at(1, 12)),
        (openai, at(4), at(4)),  # on the window's start: baseline
        (openai, at(31, month=7), at(31, month=7)),  # on the baseline's start: neither
        (openai, at(5, 1), at(5, 1)),  # after as_of
        (openai, at(4, 20), at(5, 1)),  # happened in the window, learned after as_of
    ]
    # The GitHub organisation 'anthropics' is the lab 'anthropic'.
    rows += [("anthropics/anthropic-sdk-python", at(1, hour), at(1, hour)) for hour in range(8)]
    return pl.DataFrame(
        rows,
        schema={"repo": pl.String, "ts_event": pl.Datetime("us", "UTC"), "ts_ingested": pl.Datetime("us", "UTC")},
        orient="row",
    )


def headlines_frame() -> pl.DataFrame:
    rows = [
        (["openai"], at(4, 10)),
        (["anthropic", "openai"], at(4, 11)),
        ([], at(4, 12)),
        (["anthropic"], at(1)),
        (["anthropic"], at(1, 6)),
        (["anthropic"], at(2)),
        (["anthropic"], at(3)),
    ]
    return pl.DataFrame(
        rows, schema={"matched_labs": pl.List(pl.String), "ts_event": pl.Datetime("us", "UTC")}, orient="row"
    )


def repo_stats_frame() -> pl.DataFrame:
    rows = [
        # baseline: 1000 -> 1400 over 4 days = 100/day; recent: 1400 -> 1700 in 1 day = 300/day
        ("openai/openai-python", at(31, month=7), 1000),
        ("openai/openai-python", at(2), 1100),
        ("openai/openai-python", at(4), 1400),
        ("openai/openai-python", at(4, 12), 1500),
        ("openai/openai-python", at(5), 1700),
        ("openai/openai-python", at(5, 6), 9999),  # after as_of
        # baseline: 0 -> 200 over 4 days = 50/day; recent: 200 -> 250 in 1 day = 50/day
        ("openai/openai-agents-python", at(31, month=7), 0),
        ("openai/openai-agents-python", at(4), 200),
        ("openai/openai-agents-python", at(5), 250),
        # one snapshot in the window measures no growth: the repo is left out
        ("anthropics/anthropic-sdk-python", at(1, 12), 500),
        ("anthropics/anthropic-sdk-python", at(3, 12), 700),
        ("anthropics/anthropic-sdk-python", at(4, 18), 800),
    ]
    return pl.DataFrame(
        rows, schema={"repo": pl.String, "ts_event": pl.Datetime("us", "UTC"), "stars": pl.Int64}, orient="row"
    )


def test_narrative_velocity_against_hand_computed_values() -> None:
    velocity = narrative_velocity(
        releases_frame(),
        headlines_frame(),
        repo_stats_frame(),
        AS_OF,
        WINDOW,
        BASELINE,
        labs=["openai", "mistralai", "anthropic"],
    )

    rows = {row["lab"]: row for row in velocity.iter_rows(named=True)}
    assert list(rows) == ["anthropic", "mistralai", "openai"]
    assert rows["openai"] == {
        "lab": "openai",
        "releases_recent": 3,
        "releases_baseline": 2,
        "releases_expected": 0.5,
        "releases_z": 2.5,  # (3 - 0.5) / sqrt(max(0.5, 1))
        "headlines_recent": 2,
        "headlines_baseline": 0,
        "headlines_expected": 0.0,
        "headlines_z": 2.0,  # (2 - 0) / sqrt(1)
        "stars_per_day_recent": 350.0,
        "stars_per_day_baseline": 150.0,
        "star_growth_ratio": pytest.approx(7 / 3),
    }
    assert rows["anthropic"] == {
        "lab": "anthropic",
        "releases_recent": 0,
        "releases_baseline": 8,
        "releases_expected": 2.0,
        "releases_z": pytest.approx(-math.sqrt(2)),  # (0 - 2) / sqrt(2)
        "headlines_recent": 1,
        "headlines_baseline": 4,
        "headlines_expected": 1.0,
        "headlines_z": 0.0,
        "stars_per_day_recent": None,
        "stars_per_day_baseline": None,
        "star_growth_ratio": None,
    }
    assert rows["mistralai"] == {
        "lab": "mistralai",
        "releases_recent": 0,
        "releases_baseline": 0,
        "releases_expected": 0.0,
        "releases_z": 0.0,
        "headlines_recent": 0,
        "headlines_baseline": 0,
        "headlines_expected": 0.0,
        "headlines_z": 0.0,
        "stars_per_day_recent": None,
        "stars_per_day_baseline": None,
        "star_growth_ratio": None,
    }


def test_narrative_velocity_lists_the_labs_it_sees_without_a_lab_list() -> None:
    velocity = narrative_velocity(releases_frame(), headlines_frame(), repo_stats_frame(), AS_OF, WINDOW, BASELINE)

    assert velocity.get_column("lab").to_list() == ["anthropic", "openai"]


def test_narrative_velocity_of_empty_frames_is_zero_activity() -> None:
    empty_releases = releases_frame().clear()
    empty_headlines = pl.DataFrame(schema=HEADLINES_SCHEMA)
    empty_stats = repo_stats_frame().clear()

    velocity = narrative_velocity(
        empty_releases, empty_headlines, empty_stats, AS_OF, WINDOW, BASELINE, labs=["openai"]
    )

    assert velocity.rows() == [("openai", 0, 0, 0.0, 0.0, 0, 0, 0.0, 0.0, None, None, None)]
    assert narrative_velocity(empty_releases, empty_headlines, empty_stats, AS_OF, WINDOW, BASELINE).height == 0


@pytest.mark.parametrize(
    ("as_of", "window", "baseline"),
    [
        (datetime(2025, 8, 5), WINDOW, BASELINE),  # noqa: DTZ001 - the naive time is the point
        (AS_OF, timedelta(0), BASELINE),
        (AS_OF, WINDOW, -BASELINE),
    ],
)
def test_narrative_velocity_refuses_naive_times_and_empty_periods(
    as_of: datetime, window: timedelta, baseline: timedelta
) -> None:
    with pytest.raises(ValueError):
        narrative_velocity(releases_frame(), headlines_frame(), repo_stats_frame(), as_of, window, baseline)


def test_a_naive_ingestion_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_feed("t", recorded("anthropic_news.atom"), ingested_at=datetime(2025, 8, 5), matcher=MATCHER)  # noqa: DTZ001
