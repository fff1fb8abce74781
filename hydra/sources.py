"""Where each feed's rows come from: the real clients in paper/backtest mode, the simulator in sim.

A feed's fetch is a list of independent parts (one per endpoint, symbol class, repo or
RSS feed); a part that fails is recorded and the others still load, so one dead endpoint
degrades a run instead of failing it. Incremental fetches resume from the warehouse's
cursors (the newest stored fact, stored ETags), so a retried run loads exactly what is
missing and re-loading what overlaps is harmless (upserts).

A backfill (a request with a start) fetches each part's history over the window
[start, end) as far as its source goes, and stores exactly the window's rows; a part whose
source cannot reach back over the whole window says so in one note line of the result.
Bars are backfilled a slice at a time (`backfill_slices`): the flow fetches, validates and
loads each slice before the next, so memory, each request and a failure's cost stay bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, partial

import polars as pl

from adapters import alpaca_data, binance, cme, github, macro_calendar, metal_premium, narrative, vol_credit
from adapters.config import EndpointConfig
from adapters.feed import FeedBatch, FeedError, MalformedResponse, Rejected
from adapters.http import HttpClient, endpoint_client, endpoint_pacer
from adapters.pacing import RequestPacer
from adapters.simulator import MarketSimulator
from adapters.window import Window, current_only
from core.calendar import Timeframe, market_calendar
from core.config import Mode, is_crypto
from core.readiness import history_needs
from hydra.settings import ConfigError, HydraSettings, Secrets
from warehouse import Warehouse, cursors
from warehouse.tables import TABLES_BY_FEED

FEEDS: tuple[str, ...] = tuple(TABLES_BY_FEED)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUS_ORDER = {"ok": 0, "degraded": 1, "failed": 2}


# Feeds that read what another feed loads, fetched after it in a run of several:
# metal_premium converts the SGE fixings with the USD/CNY rates vol_credit loads from FRED.
DEPENDS_ON: dict[str, tuple[str, ...]] = {"metal_premium": ("vol_credit",)}


@dataclass(frozen=True)
class FeedRequest:
    feed: str
    now: datetime  # the ingestion time: every row's ts_ingested
    start: datetime | None = None  # backfill window; None = incremental from the cursors
    end: datetime | None = None

    @property
    def window(self) -> Window | None:
        """A backfill's window: [start, end), ending no later than now (end None: now).
        None for an incremental fetch (no start); empty when start lies ahead of now."""
        if self.start is None:
            return None
        end = self.now if self.end is None else min(self.end, self.now)
        return Window(self.start, max(self.start, end))


@dataclass(frozen=True)
class FeedResult:
    feed: str
    batch: FeedBatch
    status: str  # 'ok' | 'degraded' | 'failed'
    errors: tuple[str, ...]
    window_start: datetime | None
    window_end: datetime | None
    notes: tuple[str, ...] = ()  # what the sources could not give, one line per part

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) or None


class DependencyCycle(ConfigError):
    """Feeds that depend on each other in a ring: no order can run them (a configuration error)."""


def in_dependency_order(feeds: Sequence[str], depends_on: Mapping[str, Sequence[str]] = DEPENDS_ON) -> list[str]:
    """`feeds` in the given order, except that a feed comes after those of them it depends on
    (a topological order, stable otherwise). A feed not among `feeds` is not added: running
    metal_premium alone reads the rates already stored. Raises DependencyCycle on a ring."""
    ordered: list[str] = []
    visiting: list[str] = []

    def place(feed: str) -> None:
        if feed in ordered:
            return
        if feed in visiting:
            ring = [*visiting[visiting.index(feed) :], feed]
            raise DependencyCycle(f"feeds depend on each other in a cycle: {' -> '.join(ring)}")
        visiting.append(feed)
        for needed in depends_on.get(feed, ()):
            if needed in feeds:
                place(needed)
        visiting.pop()
        ordered.append(feed)

    for feed in feeds:
        place(feed)
    return ordered


def backfill_slices(settings: HydraSettings, request: FeedRequest) -> list[FeedRequest]:
    """The requests a run makes one after the other: a bars backfill one per slice of
    `feeds.alpaca_data.backfill_slice_days`, anything else the request itself."""
    window = request.window
    if request.feed != "bars" or window is None or settings.mode is Mode.SIM:
        return [request]
    length = timedelta(days=settings.feeds.alpaca_data.backfill_slice_days)
    return [replace(request, start=piece.start, end=piece.end) for piece in window.slices(length)] or [request]


@dataclass(frozen=True)
class SourceContext:
    settings: HydraSettings
    secrets: Secrets
    warehouse: Warehouse


Part = tuple[str, Callable[[], FeedBatch]]


def fetch_feed(context: SourceContext, request: FeedRequest) -> FeedResult:
    if request.feed not in TABLES_BY_FEED:
        raise ValueError(f"unknown feed {request.feed!r}; feeds are {', '.join(FEEDS)}")
    if context.settings.mode is Mode.SIM:
        return simulated(context.settings, request)
    window = request.window
    if window is not None and window.empty:
        note = f"{request.feed}: the window {window.start:%Y-%m-%d %H:%M}.. holds no time before now: nothing to fetch"
        return FeedResult(request.feed, FeedBatch(request.feed), "ok", (), request.start, request.end, (note,))
    return collect(request, REAL_SOURCES[request.feed](context, request))


def collect(request: FeedRequest, parts: Sequence[Part]) -> FeedResult:
    """Run every part; failures become errors (and quarantine, for malformed answers), and
    each part's notes become lines of the result naming the feed and the part."""
    batch = FeedBatch(request.feed)
    errors: list[str] = []
    notes: list[str] = []
    for label, part in parts:
        try:
            fetched = part()
        except FeedError as error:
            errors.append(f"{label}: {error}")
            if isinstance(error, MalformedResponse):
                batch.rejected.append(Rejected(payload=error.payload, reason=f"{label}: {error}"))
            continue
        notes += [f"{request.feed} {label}: {note}" for note in fetched.notes]
        batch.extend(replace(fetched, notes=[]))
    status = run_status(len(parts), len(errors))
    window = request.window
    start, end = (window.start, window.end) if window is not None else (None, request.end or request.now)
    return FeedResult(request.feed, batch, status, tuple(errors), start, end, tuple(notes))


def run_status(parts: int, failed_parts: int) -> str:
    """A fetch's status: `ok` when no part failed, `failed` when every part failed, whatever
    the cause (refused, unreachable, malformed: nothing was loaded), else `degraded`."""
    if not failed_parts:
        return "ok"
    return "failed" if failed_parts >= parts else "degraded"


def simulated(settings: HydraSettings, request: FeedRequest) -> FeedResult:
    if request.start is None or request.end is None:
        raise ValueError("a simulated ingestion needs an explicit window (start and end)")
    frames = settings_simulator(settings).generate(request.start, request.end)
    tables = {table: frames[table] for table in TABLES_BY_FEED[request.feed] if table in frames}
    return FeedResult(request.feed, FeedBatch(request.feed, tables), "ok", (), request.start, request.end)


def settings_simulator(settings: HydraSettings) -> MarketSimulator:
    """The simulator `settings` describe (sim.seed, sim.start, the watchlist, the daily history)."""
    sim = settings.sim
    return simulator(sim.seed, sim.start, settings.engine.watchlist, sim.daily_history_sessions)


@cache
def simulator(seed: int, epoch: datetime, watchlist: tuple[str, ...], daily_history_sessions: int) -> MarketSimulator:
    """One simulator per process and seed: it caches the days it has generated."""
    return MarketSimulator(seed=seed, epoch=epoch, watchlist=watchlist, daily_history_sessions=daily_history_sessions)


def _secret(secrets: Secrets, field: str) -> str | None:
    value = getattr(secrets, field)
    return None if value is None else value.get_secret_value() or None


def _client(context: SourceContext, request: FeedRequest, feed: str, endpoint: str) -> HttpClient:
    feeds = context.settings.feeds
    config = getattr(feeds, endpoint)
    return endpoint_client(feed, config, feeds.user_agent, feeds.max_wait_s, _pacer(request, config))


def _pacer(request: FeedRequest, endpoint: EndpointConfig) -> RequestPacer | None:
    """A backfill's pages go at the endpoint's configured pace; an incremental run's few
    requests (a minute's bars, a page of funding) need none."""
    return None if request.window is None else endpoint_pacer(endpoint)


def bars_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    config = context.settings.feeds.alpaca_data
    symbols = tuple(dict.fromkeys((*context.settings.engine.watchlist, *config.extra_symbols)))
    window = request.window
    stored = {timeframe: cursors.last_bars(context.warehouse, timeframe) for timeframe in config.timeframes}
    # A symbol never stored gets, at once, the history a cycle reads (counted in sessions).
    first_fetch = any(symbol not in last for last in stored.values() for symbol in symbols)
    # A backfill's pages, and a first fetch's, are bigger and slower to build than the last
    # minute's: they get their own timeout (a 400-day daily request timed out at 10 s).
    timeout_s = config.backfill_timeout_s if window is not None or first_fetch else config.timeout_s
    pacer = _pacer(request, config)
    stock_client = alpaca_data.make_stock_client(
        config.base_url,
        _secret(context.secrets, "alpaca_api_key"),
        _secret(context.secrets, "alpaca_secret_key"),
        timeout_s=timeout_s,
        max_retries=config.max_retries,
        retry_wait_s=config.retry_wait_s,
        max_wait_s=context.settings.feeds.max_wait_s,
        pacer=pacer,
    )
    crypto_client = alpaca_data.make_crypto_client(
        config.base_url,
        timeout_s=timeout_s,
        max_retries=config.max_retries,
        retry_wait_s=config.retry_wait_s,
        max_wait_s=context.settings.feeds.max_wait_s,
        pacer=pacer,
    )
    crypto = tuple(s for s in symbols if is_crypto(s))
    stocks = tuple(s for s in symbols if not is_crypto(s))
    needs, sessions = history_needs(context.settings.engine), market_calendar().equities
    parts: list[Part] = []
    for timeframe in config.timeframes:
        # A bar still forming is not fetched: the window ends where the current bar starts.
        forming = _bar_start(request.now, timeframe)
        end = min(window.end, forming) if window is not None else request.end or forming
        first_start = needs.since(sessions, request.now, Timeframe(timeframe))
        for label, group in _bar_groups(stocks, crypto, stored[timeframe], window):
            if window is not None:
                start = window.start
            else:
                start = min(alpaca_data.next_start(stored[timeframe].get(s), timeframe, first_start) for s in group)
            parts.append(
                (
                    f"alpaca {label} {timeframe}",
                    partial(
                        alpaca_data.fetch_bars,
                        stock_client,
                        crypto_client,
                        group,
                        timeframe,
                        start,
                        end,
                        request.now,
                        stock_feed=config.stock_feed,
                    ),
                )
            )
    return parts


def _bar_groups(
    stocks: tuple[str, ...], crypto: tuple[str, ...], stored: Mapping[str, datetime], window: Window | None
) -> list[tuple[str, tuple[str, ...]]]:
    """The symbols of each request, labelled. One request per asset class resumes its symbols
    from the earliest of their cursors (a bar loaded twice is upserted once); incrementally,
    symbols never stored get a request of their own, so their first look back (days of
    minutes) is not asked again for every other symbol of the class, minute after minute."""
    groups: list[tuple[str, tuple[str, ...]]] = []
    for label, symbols in (("stocks", stocks), ("crypto", crypto)):
        new = () if window is not None else tuple(s for s in symbols if s not in stored)
        resumed = tuple(s for s in symbols if s not in new)
        groups += [(label, resumed)] if resumed else []
        groups += [(f"{label} first fetch", new)] if new else []
    return groups


def _bar_start(now: datetime, timeframe: str) -> datetime:
    if timeframe == "1Day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(second=0, microsecond=0)


def binance_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    config = context.settings.feeds.binance
    client = _client(context, request, "binance", "binance")
    window = request.window
    resume = binance.Cursors()
    if window is None:
        resume = binance.Cursors(
            funding=cursors.last_funding(context.warehouse, binance.VENUE),
            open_interest=cursors.last_open_interest(context.warehouse, binance.VENUE, config.open_interest_period),
        )
    return binance.binance_steps(
        client, config.symbols, resume, request.now, period=config.open_interest_period, window=window
    )


def cme_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    config = context.settings.feeds.cme
    client = _client(context, request, "cme", "cme")
    previous = cursors.latest_margin_snapshot(context.warehouse)
    return [
        (
            "margins and advisories",
            lambda: cme.fetch_cme(
                client,
                config.products,
                previous,
                config.advisory_urls,
                request.now,
                request.now,
                window=request.window,
            ),
        )
    ]


def metal_premium_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    sge = _client(context, request, "metal_premium", "sge")
    lbma = _client(context, request, "metal_premium", "lbma")
    window = request.window
    since = None if window is not None else _date_or_none(cursors.latest_event(context.warehouse, "metal_premiums"))
    # The rates read are those of the fixings asked for: a backfill's window, else every rate
    # from the newest stored fixing on (all of them on a first run); the premium is computed
    # for the days those rates cover (metal_premium.compute_premiums).
    if window is None:
        resume = EPOCH if since is None else datetime.combine(since, time.min, UTC)
        rates = cursors.series_values(context.warehouse, "USDCNY", resume)
    else:
        first, last = window.days()
        rates = cursors.series_values(context.warehouse, "USDCNY", datetime.combine(first, time.min, UTC))
        rates = rates.filter(pl.col("ts_event").dt.date() <= last)
    usd_cny = {ts.date(): value for ts, value in rates.iter_rows()}

    def premium() -> FeedBatch:
        if not usd_cny:
            needed = "" if window is None else f" for {window} (backfill vol_credit over it first)"
            raise FeedError(
                "metal_premium",
                f"no USD/CNY rates stored{needed}: the vol_credit feed loads them with FRED_API_KEY",
            )
        return metal_premium.fetch_shanghai_premium(
            sge, lbma, usd_cny, ingested_at=request.now, since=since, window=window
        )

    return [("shanghai premium", premium)]


def macro_calendar_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    bls = _client(context, request, "macro_calendar", "bls")
    fomc = _client(context, request, "macro_calendar", "fomc")
    window = request.window
    parts: list[Part] = [
        ("bls", lambda: macro_calendar.fetch_bls_calendar(bls, request.now, window=window)),
        ("fomc", lambda: macro_calendar.fetch_fomc_calendar(fomc, request.now, window=window)),
    ]
    fred_key = _secret(context.secrets, "fred_api_key")
    if fred_key:
        fred = _client(context, request, "macro_calendar", "fred")
        since = (request.now - timedelta(days=400)).date()
        parts.append(
            (
                "fred",
                lambda: macro_calendar.fetch_fred_release_dates(
                    fred, fred_key, request.now, since=since, window=window
                ),
            )
        )
    return parts


def github_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    http = _client(context, request, "github", "github")
    client = github.GitHubClient(http, token=_secret(context.secrets, "github_token"))
    etags = cursors.feed_state(context.warehouse, "github")
    last_stats = cursors.last_repo_stats(context.warehouse)
    window = request.window
    parts: list[Part] = []
    for repo in context.settings.feeds.github.repos:
        etag = etags.get(github.etag_key(repo))
        parts.append(
            (f"releases {repo}", partial(client.fetch_releases, repo, etag=etag, now=request.now, window=window))
        )
        # An ETag stands for the counts stored with it: without them a 304 would observe nothing.
        stats_etag, counts = etags.get(github.stats_etag_key(repo)), last_stats.get(repo)
        stored = github.StoredStats(stats_etag, counts) if stats_etag and counts else None
        stats = current_only(
            partial(client.fetch_repo_stats, repo, now=request.now, stored=stored),
            window,
            request.now,
            "GitHub gives only the current star and fork counts",
            github.FEED,
        )
        parts.append((f"stats {repo}", stats))
    return parts


def narrative_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    config = context.settings.feeds.narrative
    # RSS URLs are absolute (feeds live on many hosts), so the client has no base URL.
    http = HttpClient(
        feed="narrative",
        base_url="",
        user_agent=context.settings.feeds.user_agent,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        max_wait_s=context.settings.feeds.max_wait_s,
    )
    client = narrative.NarrativeClient(
        http,
        narrative.HeadlineMatcher.for_watchlist(context.settings.engine.watchlist),
        source_labs={feed.name: feed.lab for feed in config.feeds if feed.lab},
    )
    return [
        (f"rss {feed.name}", partial(client.fetch_feed, feed.name, feed.url, now=request.now, window=request.window))
        for feed in config.feeds
    ]


def vol_credit_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    cboe = _client(context, request, "vol_credit", "cboe")
    fred_key = _secret(context.secrets, "fred_api_key")
    fred = _client(context, request, "vol_credit", "fred") if fred_key else None
    window = request.window
    # Each series resumes from its own newest day (a window: from the window's start).
    last = {} if window is not None else cursors.last_series(context.warehouse)
    vix_since = _date_or_none(last.get(vol_credit.VIX))
    parts: list[Part] = [
        ("vix", partial(vol_credit.fetch_vix, cboe, fred, fred_key, vix_since, request.now, window=window))
    ]
    if fred is not None and fred_key:
        for series_id in ("BAMLH0A0HYM2", "DEXCHUS"):
            since = _date_or_none(last.get(vol_credit.FRED_SERIES[series_id].series))
            parts.append(
                (
                    f"fred {series_id}",
                    partial(vol_credit.fetch_fred_series, fred, fred_key, series_id, since, request.now, window=window),
                )
            )
    return parts


def _date_or_none(moment: datetime | None) -> date | None:
    return None if moment is None else moment.date()


REAL_SOURCES: dict[str, Callable[[SourceContext, FeedRequest], list[Part]]] = {
    "bars": bars_parts,
    "binance": binance_parts,
    "cme": cme_parts,
    "metal_premium": metal_premium_parts,
    "macro_calendar": macro_calendar_parts,
    "github": github_parts,
    "narrative": narrative_parts,
    "vol_credit": vol_credit_parts,
}
