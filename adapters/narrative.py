"""AI narrative: headlines from RSS/Atom feeds, and how fast each lab's story is moving.

Headlines are tagged with the watchlist tickers and AI labs they name. Matching looks at
the title only, so every tag can be recomputed from the stored row, and it is
case-sensitive because several lab and product names are also ordinary words (mistral,
llama, gemini, claude) that lower-case text uses in their ordinary sense. A feed published
by a lab itself ("Introducing GPT-5" on OpenAI's blog) rarely names the lab in its titles,
so such feeds tag every entry with their lab (`source_labs`).

`narrative_velocity` is pure: strategy 4 calls it on frames read from the warehouse.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Protocol

import feedparser
import polars as pl

from adapters.feed import FeedBatch, MalformedResponse, Rejected
from adapters.http import HttpClient
from adapters.tables import TABLE_SCHEMAS
from adapters.window import Window, keep_window

FEED = "narrative"
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"

# Lab ids are the ones core.config.AiDisruptionParams.labs uses (GitHub organisations).
LAB_ALIASES: Mapping[str, tuple[str, ...]] = {
    "openai": ("OpenAI", "ChatGPT", "Sora"),
    "anthropic": ("Anthropic", "Claude"),
    "google-deepmind": ("DeepMind", "Gemini", "Gemma"),
    "meta-llama": ("Llama", "Meta AI"),
    "mistralai": ("Mistral", "Mistral AI", "Le Chat"),
}
# GitHub organisations whose name differs from the lab id.
OWNER_LABS: Mapping[str, str] = {"anthropics": "anthropic"}
COMPANY_TICKERS: Mapping[str, str] = {
    "Salesforce": "CRM",
    "Shopify": "SHOP",
    "Adobe": "ADBE",
    "LegalZoom": "LZ",
    "Workday": "WDAY",
    "Microsoft": "MSFT",
}
HEADLINES_SCHEMA = TABLE_SCHEMAS["headlines"]
VELOCITY_SCHEMA: dict[str, Any] = {
    "lab": pl.String,
    "releases_recent": pl.Int64,
    "releases_baseline": pl.Int64,
    "releases_expected": pl.Float64,
    "releases_z": pl.Float64,
    "headlines_recent": pl.Int64,
    "headlines_baseline": pl.Int64,
    "headlines_expected": pl.Float64,
    "headlines_z": pl.Float64,
    "stars_per_day_recent": pl.Float64,
    "stars_per_day_baseline": pl.Float64,
    "star_growth_ratio": pl.Float64,
}
SECONDS_PER_DAY = 86_400.0


class NarrativeFeed(Protocol):
    def fetch_feed(self, name: str, url: str, *, now: datetime, window: Window | None = None) -> FeedBatch: ...


@cache
def _word(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<![A-Za-z0-9])" + re.escape(text) + r"(?![A-Za-z0-9])")


@dataclass(frozen=True)
class HeadlineMatcher:
    """Which tickers and labs a title names: whole words, case-sensitive."""

    tickers: tuple[str, ...]
    company_tickers: Mapping[str, str] = field(default_factory=lambda: dict(COMPANY_TICKERS))
    lab_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(LAB_ALIASES))

    @classmethod
    def for_watchlist(cls, watchlist: Iterable[str]) -> HeadlineMatcher:
        """Equity tickers of the watchlist, and the company names of those it knows.

        Crypto pairs are left out: 'BTC/USD' never appears in a headline as such.
        """
        tickers = tuple(symbol for symbol in watchlist if "/" not in symbol)
        companies = {name: ticker for name, ticker in COMPANY_TICKERS.items() if ticker in tickers}
        return cls(tickers=tickers, company_tickers=companies)

    def tickers_in(self, title: str) -> list[str]:
        found = {ticker for ticker in self.tickers if _word(ticker).search(title)}
        found.update(ticker for name, ticker in self.company_tickers.items() if _word(name).search(title))
        return sorted(found)

    def labs_in(self, title: str) -> list[str]:
        return sorted(lab for lab, aliases in self.lab_aliases.items() if any(_word(a).search(title) for a in aliases))


@dataclass
class NarrativeClient:
    http: HttpClient
    matcher: HeadlineMatcher
    # Feeds a lab publishes itself (adapters.config.RssFeedConfig.lab): every entry is about it.
    source_labs: Mapping[str, str] = field(default_factory=dict)

    def fetch_feed(self, name: str, url: str, *, now: datetime, window: Window | None = None) -> FeedBatch:
        """Headlines of one configured feed; `url` is absolute (feeds live on many hosts).

        A feed holds only its latest items, so a backfill (`window`) keeps those published in
        the window and notes the part of it before the feed's oldest item.
        """
        response = self.http.request("GET", url, headers={"Accept": FEED_ACCEPT})
        batch = parse_feed(
            name, response.content, ingested_at=now, matcher=self.matcher, source_lab=self.source_labs.get(name)
        )
        return keep_window(batch, "headlines", window, "the feed holds only its latest items")


def parse_feed(
    source: str,
    content: bytes,
    *,
    ingested_at: datetime,
    matcher: HeadlineMatcher,
    source_lab: str | None = None,
) -> FeedBatch:
    """headlines rows from an RSS or Atom document; undated or untitled entries are rejected."""
    if ingested_at.tzinfo is None:
        raise ValueError("ingested_at must be timezone-aware")
    try:
        parsed = feedparser.parse(content)
    except ValueError as error:
        # feedparser's strict parser trusts expat's name splitting: a namespace URI holding a
        # space-like character ('h\xa0ttp://...') makes it unpack a three-part name and fail.
        raise MalformedResponse(
            FEED, f"{source}: unreadable XML: {error}", content.decode("utf-8", errors="replace")[:100_000]
        ) from None
    entries = parsed.get("entries") or []
    # feedparser reads almost anything without raising; an HTML error page comes back as a
    # "feed" of unknown version with no entries, a broken XML one as bozo with no entries.
    if not entries and (parsed.get("bozo") or not parsed.get("version")):
        problem = parsed.get("bozo_exception") or "not an RSS or Atom document"
        raise MalformedResponse(FEED, f"{source}: {problem}", content.decode("utf-8", errors="replace")[:100_000])
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    ingested = ingested_at.astimezone(UTC)
    for entry in entries:
        title = " ".join(str(entry.get("title") or "").split())
        published = _entry_time(entry)
        if not title or published is None:
            reason = "entry has no title" if not title else "entry has no parseable published or updated date"
            rejected.append(Rejected(payload=_entry_payload(entry), reason=f"{source}: {reason}"))
            continue
        labs = set(matcher.labs_in(title))
        if source_lab:
            labs.add(source_lab)
        link = entry.get("link") or None
        rows.append(
            {
                "source": source,
                "item_id": entry.get("id") or link or "sha256:" + hashlib.sha256(title.encode("utf-8")).hexdigest(),
                "ts_event": published,
                "title": title,
                "link": link,
                "matched_tickers": matcher.tickers_in(title),
                "matched_labs": sorted(labs),
                "ts_ingested": ingested,
            }
        )
    return FeedBatch(feed=FEED, tables={"headlines": pl.DataFrame(rows, schema=HEADLINES_SCHEMA)}, rejected=rejected)


def narrative_velocity(
    releases: pl.DataFrame,
    headlines: pl.DataFrame,
    repo_stats: pl.DataFrame,
    as_of: datetime,
    window: timedelta,
    baseline: timedelta,
    *,
    labs: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Per lab: is its release, headline and star activity running ahead of its baseline?

    Frames have the warehouse columns (github_releases: repo, ts_event; headlines:
    matched_labs, ts_event; repo_stats: repo, ts_event, stars); where a frame carries
    ts_ingested, rows learned after `as_of` are ignored, so a replay sees no future.

    Counts: the recent window is (as_of - window, as_of], the baseline the `baseline`
    before it. The baseline count scaled to the window's length is the expected count λ,
    and `*_z` is the Poisson z-score (recent - λ) / sqrt(max(λ, 1)): a Poisson count's
    standard deviation is sqrt(λ), floored at 1 so that one event after a silent baseline
    scores 1, not infinity.

    Stars: per repo, the growth between the first and last snapshot inside each closed
    period, per day; only repos measurable in both periods count, summed per lab, and
    `star_growth_ratio` is recent / baseline (null unless the baseline grew).

    One row per lab, sorted: `labs` if given, else every lab seen in the inputs.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if window <= timedelta(0) or baseline <= timedelta(0):
        raise ValueError("window and baseline must be positive")
    recent_start = as_of - window
    baseline_start = recent_start - baseline
    scale = window / baseline

    release_events = _known(releases, as_of).select(_repo_lab().alias("lab"), "ts_event")
    headline_events = (
        _known(headlines, as_of)
        .select(pl.col("matched_labs").alias("lab"), "ts_event")
        .explode("lab")
        .drop_nulls("lab")
    )
    counts = [
        _counts(release_events, "releases", as_of, recent_start, baseline_start),
        _counts(headline_events, "headlines", as_of, recent_start, baseline_start),
    ]
    stars = _star_rates(_known(repo_stats, as_of), as_of, recent_start, baseline_start)

    if labs is None:
        lab_ids = sorted(set(pl.concat([frame.get_column("lab") for frame in [*counts, stars]]).to_list()))
    else:
        lab_ids = sorted(set(labs))
    result = pl.DataFrame({"lab": lab_ids}, schema={"lab": pl.String})
    for frame in [*counts, stars]:
        result = result.join(frame, on="lab", how="left")
    for kind in ("releases", "headlines"):
        recent, base = pl.col(f"{kind}_recent").fill_null(0), pl.col(f"{kind}_baseline").fill_null(0)
        expected = base.cast(pl.Float64) * scale
        result = result.with_columns(
            recent.alias(f"{kind}_recent"),
            base.alias(f"{kind}_baseline"),
            expected.alias(f"{kind}_expected"),
            ((recent - expected) / pl.max_horizontal(expected, pl.lit(1.0)).sqrt()).alias(f"{kind}_z"),
        )
    result = result.with_columns(
        pl.when(pl.col("stars_per_day_baseline") > 0)
        .then(pl.col("stars_per_day_recent") / pl.col("stars_per_day_baseline"))
        .otherwise(None)
        .alias("star_growth_ratio")
    )
    return result.select(pl.col(name).cast(dtype) for name, dtype in VELOCITY_SCHEMA.items()).sort("lab")


def _repo_lab() -> pl.Expr:
    """The lab of an 'owner/name' repo: its owner, unless OWNER_LABS renames it."""
    return pl.col("repo").str.split("/").list.first().replace(dict(OWNER_LABS))


def _known(frame: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    known = frame.filter(pl.col("ts_event") <= as_of)
    return known.filter(pl.col("ts_ingested") <= as_of) if "ts_ingested" in frame.columns else known


def _counts(
    events: pl.DataFrame, kind: str, as_of: datetime, recent_start: datetime, baseline_start: datetime
) -> pl.DataFrame:
    ts = pl.col("ts_event")
    return events.group_by("lab").agg(
        ((ts > recent_start) & (ts <= as_of)).sum().cast(pl.Int64).alias(f"{kind}_recent"),
        ((ts > baseline_start) & (ts <= recent_start)).sum().cast(pl.Int64).alias(f"{kind}_baseline"),
    )


def _star_rates(stats: pl.DataFrame, as_of: datetime, recent_start: datetime, baseline_start: datetime) -> pl.DataFrame:
    recent = _growth_per_day(stats, recent_start, as_of, "stars_per_day_recent")
    base = _growth_per_day(stats, baseline_start, recent_start, "stars_per_day_baseline")
    return (
        recent.join(base, on="repo", how="inner")
        .with_columns(_repo_lab().alias("lab"))
        .group_by("lab")
        .agg(pl.col("stars_per_day_recent").sum(), pl.col("stars_per_day_baseline").sum())
    )


def _growth_per_day(stats: pl.DataFrame, start: datetime, end: datetime, name: str) -> pl.DataFrame:
    ts = pl.col("ts_event")
    spans = (
        stats.filter((ts >= start) & (ts <= end))
        .sort("ts_event")
        .group_by("repo")
        .agg(
            (pl.col("stars").last() - pl.col("stars").first()).cast(pl.Float64).alias("gained"),
            ((ts.last() - ts.first()).dt.total_microseconds() / 1e6 / SECONDS_PER_DAY).alias("days"),
        )
    )
    return spans.filter(pl.col("days") > 0).select("repo", (pl.col("gained") / pl.col("days")).alias(name))


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    # feedparser normalises every date format it understands to a UTC struct_time.
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _entry_payload(entry: Mapping[str, Any]) -> str:
    raw = {key: value for key, value in entry.items() if not key.endswith("_parsed")}
    return json.dumps(raw, sort_keys=True, default=str)
