"""Where each feed's rows come from: the real clients in paper/backtest mode, the simulator in sim.

A feed's fetch is a list of independent parts (one per endpoint, symbol class, repo or
RSS feed); a part that fails is recorded and the others still load, so one dead endpoint
degrades a run instead of failing it. Incremental fetches resume from the warehouse's
cursors (the newest stored fact, stored ETags), so a retried run loads exactly what is
missing and re-loading what overlaps is harmless (upserts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, partial

from adapters import alpaca_data, binance, cme, github, macro_calendar, metal_premium, narrative, vol_credit
from adapters.feed import FeedBatch, FeedError, MalformedResponse, Rejected
from adapters.http import HttpClient, endpoint_client
from adapters.simulator import MarketSimulator
from core.config import Mode, is_crypto
from hydra.settings import HydraSettings, Secrets
from warehouse import Warehouse, cursors
from warehouse.tables import TABLES_BY_FEED

FEEDS: tuple[str, ...] = tuple(TABLES_BY_FEED)
STATUS_ORDER = {"ok": 0, "degraded": 1, "failed": 2}


@dataclass(frozen=True)
class FeedRequest:
    feed: str
    now: datetime  # the ingestion time: every row's ts_ingested
    start: datetime | None = None  # backfill window; None = incremental from the cursors
    end: datetime | None = None


@dataclass(frozen=True)
class FeedResult:
    feed: str
    batch: FeedBatch
    status: str  # 'ok' | 'degraded' | 'failed'
    errors: tuple[str, ...]
    window_start: datetime | None
    window_end: datetime | None

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) or None


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
    return collect(request, REAL_SOURCES[request.feed](context, request))


def collect(request: FeedRequest, parts: Sequence[Part]) -> FeedResult:
    """Run every part; failures become errors (and quarantine, for malformed answers)."""
    batch = FeedBatch(request.feed)
    errors: list[str] = []
    statuses: list[str] = []
    for label, part in parts:
        try:
            batch.extend(part())
        except FeedError as error:
            errors.append(f"{label}: {error}")
            statuses.append(error.status)
            if isinstance(error, MalformedResponse):
                batch.rejected.append(Rejected(payload=error.payload, reason=f"{label}: {error}"))
    if not errors:
        status = "ok"
    elif len(errors) < len(parts):
        status = "degraded"
    else:
        status = max(statuses, key=STATUS_ORDER.__getitem__)
    return FeedResult(request.feed, batch, status, tuple(errors), request.start, request.end or request.now)


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


def _client(context: SourceContext, feed: str, endpoint: str) -> HttpClient:
    feeds = context.settings.feeds
    return endpoint_client(feed, getattr(feeds, endpoint), feeds.user_agent, feeds.max_wait_s)


def bars_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    config = context.settings.feeds.alpaca_data
    symbols = tuple(dict.fromkeys((*context.settings.engine.watchlist, *config.extra_symbols)))
    stock_client = alpaca_data.make_stock_client(
        config.base_url,
        _secret(context.secrets, "alpaca_api_key"),
        _secret(context.secrets, "alpaca_secret_key"),
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        retry_wait_s=config.retry_wait_s,
    )
    crypto_client = alpaca_data.make_crypto_client(
        config.base_url, timeout_s=config.timeout_s, max_retries=config.max_retries, retry_wait_s=config.retry_wait_s
    )
    crypto = tuple(s for s in symbols if is_crypto(s))
    stocks = tuple(s for s in symbols if not is_crypto(s))
    parts: list[Part] = []
    for timeframe in config.timeframes:
        # A bar still forming is not fetched: the window ends where the current bar starts.
        end = request.end or _bar_start(request.now, timeframe)
        lookback = timedelta(days=config.minute_lookback_days if timeframe == "1Min" else config.daily_lookback_days)
        stored = cursors.last_bars(context.warehouse, timeframe)
        for label, group in (("stocks", stocks), ("crypto", crypto)):
            if not group:
                continue
            start = request.start or min(
                alpaca_data.next_start(stored.get(symbol), timeframe, lookback, request.now) for symbol in group
            )
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


def _bar_start(now: datetime, timeframe: str) -> datetime:
    if timeframe == "1Day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(second=0, microsecond=0)


def binance_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    config = context.settings.feeds.binance
    client = _client(context, "binance", "binance")
    since = request.start or cursors.latest_event(context.warehouse, "funding_rates")
    return binance.binance_steps(client, config.symbols, since, request.now, period=config.open_interest_period)


def cme_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    config = context.settings.feeds.cme
    client = _client(context, "cme", "cme")
    previous = cursors.latest_margin_snapshot(context.warehouse)
    return [
        (
            "cme",
            lambda: cme.fetch_cme(
                client,
                config.products,
                previous,
                config.advisory_urls,
                request.now,
                request.now,
            ),
        )
    ]


def metal_premium_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    sge = _client(context, "metal_premium", "sge")
    lbma = _client(context, "metal_premium", "lbma")
    since = _date_or_none(request.start or cursors.latest_event(context.warehouse, "metal_premiums"))
    rates_since = request.now - timedelta(days=60)
    rates = cursors.series_values(context.warehouse, "USDCNY", rates_since)
    usd_cny = {ts.date(): value for ts, value in rates.iter_rows()}

    def premium() -> FeedBatch:
        if not usd_cny:
            raise FeedError(
                "metal_premium", "no USD/CNY rates stored: the vol_credit feed loads them with FRED_API_KEY"
            )
        return metal_premium.fetch_shanghai_premium(sge, lbma, usd_cny, ingested_at=request.now, since=since)

    return [("shanghai premium", premium)]


def macro_calendar_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    bls = _client(context, "macro_calendar", "bls")
    fomc = _client(context, "macro_calendar", "fomc")
    parts: list[Part] = [
        ("bls", lambda: macro_calendar.fetch_bls_calendar(bls, request.now)),
        ("fomc", lambda: macro_calendar.fetch_fomc_calendar(fomc, request.now)),
    ]
    fred_key = _secret(context.secrets, "fred_api_key")
    if fred_key:
        fred = _client(context, "macro_calendar", "fred")
        since = (request.start or request.now - timedelta(days=400)).date()
        parts.append(
            ("fred", lambda: macro_calendar.fetch_fred_release_dates(fred, fred_key, request.now, since=since))
        )
    return parts


def github_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    http = _client(context, "github", "github")
    client = github.GitHubClient(http, token=_secret(context.secrets, "github_token"))
    etags = cursors.feed_state(context.warehouse, "github")
    parts: list[Part] = []
    for repo in context.settings.feeds.github.repos:
        etag = etags.get(github.etag_key(repo))
        parts.append((f"releases {repo}", partial(client.fetch_releases, repo, etag=etag, now=request.now)))
        parts.append((f"stats {repo}", partial(client.fetch_repo_stats, repo, now=request.now)))
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
        (f"rss {feed.name}", partial(client.fetch_feed, feed.name, feed.url, now=request.now)) for feed in config.feeds
    ]


def vol_credit_parts(context: SourceContext, request: FeedRequest) -> list[Part]:
    cboe = _client(context, "vol_credit", "cboe")
    fred_key = _secret(context.secrets, "fred_api_key")
    fred = _client(context, "vol_credit", "fred") if fred_key else None
    since = _date_or_none(request.start or cursors.latest_event(context.warehouse, "market_series"))
    parts: list[Part] = [("vix", lambda: vol_credit.fetch_vix(cboe, fred, fred_key, since, request.now))]
    if fred is not None and fred_key:
        for series_id in ("BAMLH0A0HYM2", "DEXCHUS"):
            parts.append(
                (
                    f"fred {series_id}",
                    partial(vol_credit.fetch_fred_series, fred, fred_key, series_id, since, request.now),
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
