"""Settings of the feed clients and the ingestion schedule.

Plain frozen models, so adapters can take their own configuration without depending on the
application layer that reads hydra.toml and the environment (hydra.settings). An endpoint
is one upstream service (base URL without a trailing slash: the SDKs and clients append
'/v2/...'); a feed is one ingestion flow, which may call several endpoints.
"""

from __future__ import annotations

from pydantic import Field

from core.config import Frozen


class EndpointConfig(Frozen):
    base_url: str
    timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    requests_per_minute: int | None = Field(
        default=None, ge=1, description="paces every request below the upstream's documented rate; None: unpaced"
    )


class AlpacaDataConfig(EndpointConfig):
    stock_feed: str = Field(default="iex", pattern="^(iex|sip)$")
    timeframes: tuple[str, ...] = ("1Min", "1Day")
    # Bars beyond the watchlist that feeds need as context: LQD against HYG is the credit gauge.
    extra_symbols: tuple[str, ...] = ("LQD",)
    retry_wait_s: float = Field(default=3.0, ge=0, description="backoff before the first retry, doubling after")
    # A backfill is fetched, validated and loaded a slice at a time: memory and each
    # request's answer stay bounded by a slice, and a failure costs one slice.
    backfill_slice_days: float = Field(default=30.0, gt=0)
    backfill_timeout_s: float = Field(default=60.0, gt=0, description="per request of a backfill (--start/--end)")


class BinanceConfig(EndpointConfig):
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    open_interest_period: str = Field(default="5m", pattern="^(5m|15m|30m|1h|2h|4h|6h|12h|1d)$")


class CmeConfig(EndpointConfig):
    products: tuple[str, ...] = ("GC", "SI")
    # Clearing advisories to read (absolute URLs or paths); CME publishes no index we may crawl.
    advisory_urls: tuple[str, ...] = ()


class GitHubConfig(EndpointConfig):
    repos: tuple[str, ...] = (
        "openai/openai-python",
        "anthropics/anthropic-sdk-python",
        "google-deepmind/gemma",
        "meta-llama/llama-models",
        "mistralai/mistral-inference",
    )


class RssFeedConfig(Frozen):
    name: str
    url: str
    lab: str | None = None  # the AI lab a lab's own blog speaks for


class NarrativeConfig(Frozen):
    timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    feeds: tuple[RssFeedConfig, ...] = (
        RssFeedConfig(name="openai-news", url="https://openai.com/news/rss.xml", lab="openai"),
        RssFeedConfig(name="anthropic-news", url="https://www.anthropic.com/rss.xml", lab="anthropic"),
        RssFeedConfig(name="techcrunch-ai", url="https://techcrunch.com/category/artificial-intelligence/feed/"),
    )


class Schedules(Frozen):
    """Seconds between runs of each ingestion deployment."""

    bars: int = Field(default=60, gt=0)
    binance: int = Field(default=300, gt=0)
    cme: int = Field(default=3600, gt=0)
    metal_premium: int = Field(default=3600, gt=0)
    macro_calendar: int = Field(default=86400, gt=0)
    github: int = Field(default=600, gt=0)
    narrative: int = Field(default=600, gt=0)
    vol_credit: int = Field(default=86400, gt=0)


class FeedsConfig(Frozen):
    alpaca_trading: EndpointConfig = EndpointConfig(base_url="https://paper-api.alpaca.markets")
    # Alpaca allows 200 requests a minute, FRED 120; Binance counts weight (2400 a minute, and
    # funding history shares 500 requests per 5 minutes). The paces leave room for the
    # trading flow and other clients of the same key or address.
    alpaca_data: AlpacaDataConfig = AlpacaDataConfig(base_url="https://data.alpaca.markets", requests_per_minute=180)
    binance: BinanceConfig = BinanceConfig(base_url="https://fapi.binance.com", requests_per_minute=60)
    cme: CmeConfig = CmeConfig(base_url="https://www.cmegroup.com")
    sge: EndpointConfig = EndpointConfig(base_url="https://www.sge.com.cn")
    lbma: EndpointConfig = EndpointConfig(base_url="https://prices.lbma.org.uk")
    bls: EndpointConfig = EndpointConfig(base_url="https://www.bls.gov")
    fomc: EndpointConfig = EndpointConfig(base_url="https://www.federalreserve.gov")
    fred: EndpointConfig = EndpointConfig(base_url="https://api.stlouisfed.org", requests_per_minute=100)
    github: GitHubConfig = GitHubConfig(base_url="https://api.github.com")
    cboe: EndpointConfig = EndpointConfig(base_url="https://cdn.cboe.com")
    narrative: NarrativeConfig = NarrativeConfig()
    schedules: Schedules = Schedules()
    user_agent: str = "HYDRA/0.1 (research trading engine; contact: set feeds.user_agent)"
    # Longest Retry-After a run waits for before recording the feed as rate limited.
    max_wait_s: float = Field(default=30.0, ge=0)
    # Retries of a feed run whose every part failed (on top of each client's own retries).
    fetch_retry_delays_s: tuple[float, ...] = (10.0, 60.0)
