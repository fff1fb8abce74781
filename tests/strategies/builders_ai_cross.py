"""Constructed snapshots for the ai_disruption and cross_asset tests: warehouse-shaped frames
whose episodes are placed by hand, so each test knows exactly what the strategy should see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import polars as pl

from adapters.simulator import TABLE_SCHEMAS
from core.config import StrategiesConfig
from core.snapshot import MarketSnapshot
from core.types import Regime, RegimeReading, Side
from strategies.base import StrategyContext

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# February 2026: US sessions run 14:30-21:00 UTC (no daylight saving yet).
SESSION_OPEN = time(14, 30)
SESSION_CLOSE = time(21, 0)
BAR_STEP = timedelta(minutes=15)


def at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=UTC)


def frame(table: str, columns: Mapping[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(dict(columns), schema=TABLE_SCHEMAS[table])


def bars(symbol: str, times: Sequence[datetime], closes: Sequence[float] | np.ndarray) -> pl.DataFrame:
    close = np.asarray(closes, dtype=np.float64)
    return frame(
        "bars",
        {
            "symbol": [symbol] * len(times),
            "timeframe": ["1Min"] * len(times),
            "ts_event": list(times),
            "open": close,
            "high": close * 1.0005,
            "low": close * 0.9995,
            "close": close,
            "volume": [1_000.0] * len(times),
            "trade_count": [None] * len(times),
            "vwap": [None] * len(times),
            "source": ["test"] * len(times),
            "ts_ingested": [t + MINUTE for t in times],
        },
    )


def releases(rows: Sequence[tuple[str, str, datetime]]) -> pl.DataFrame:
    return frame(
        "github_releases",
        {
            "repo": [repo for repo, _, _ in rows],
            "release_id": list(range(1, len(rows) + 1)),
            "tag_name": [tag for _, tag, _ in rows],
            "name": [tag for _, tag, _ in rows],
            "draft": [False] * len(rows),
            "prerelease": [False] * len(rows),
            "created_at": [ts for _, _, ts in rows],
            "ts_event": [ts for _, _, ts in rows],
            "html_url": [None] * len(rows),
            "ts_ingested": [ts + 2 * MINUTE for _, _, ts in rows],
        },
    )


def headlines(rows: Sequence[tuple[datetime, Sequence[str], Sequence[str]]]) -> pl.DataFrame:
    """Rows of (published, matched labs, matched tickers)."""
    return frame(
        "headlines",
        {
            "source": ["test"] * len(rows),
            "item_id": [f"h{k}" for k in range(len(rows))],
            "ts_event": [ts for ts, _, _ in rows],
            "title": ["headline"] * len(rows),
            "link": [None] * len(rows),
            "matched_tickers": [list(tickers) for _, _, tickers in rows],
            "matched_labs": [list(labs) for _, labs, _ in rows],
            "ts_ingested": [ts + 5 * MINUTE for ts, _, _ in rows],
        },
    )


def repo_stats(rows: Sequence[tuple[str, datetime, int]]) -> pl.DataFrame:
    return frame(
        "repo_stats",
        {
            "repo": [repo for repo, _, _ in rows],
            "ts_event": [ts for _, ts, _ in rows],
            "stars": [stars for _, _, stars in rows],
            "forks": [0] * len(rows),
            "open_issues": [0] * len(rows),
            "watchers": [0] * len(rows),
            "ts_ingested": [ts + MINUTE for _, ts, _ in rows],
        },
    )


def market_series(rows: Sequence[tuple[str, datetime, float]]) -> pl.DataFrame:
    return frame(
        "market_series",
        {
            "series": [name for name, _, _ in rows],
            "ts_event": [ts for _, ts, _ in rows],
            "value": [value for _, _, value in rows],
            "source": ["test"] * len(rows),
            "ts_ingested": [ts + 15 * MINUTE for _, ts, _ in rows],
        },
    )


def snapshot(as_of: datetime, tables: Mapping[str, pl.DataFrame]) -> MarketSnapshot:
    """What was known at as_of: rows ingested by then, as the warehouse's point-in-time read."""
    return MarketSnapshot(as_of, {name: t.filter(pl.col("ts_ingested") <= as_of) for name, t in tables.items()})


def context(
    snap: MarketSnapshot,
    name: str,
    regime: Regime = Regime.HIGH_VOL,
    entered: frozenset[tuple[str, Side]] = frozenset(),
    params: Any = None,
) -> StrategyContext:
    return StrategyContext(
        snapshot=snap,
        regime=RegimeReading(regime, 0.9),
        now=snap.as_of,
        params=getattr(StrategiesConfig(), name) if params is None else params,
        entered=entered,
    )


def business_days(first: date, last: date) -> list[date]:
    return [
        first + timedelta(days=k) for k in range((last - first).days + 1) if (first + timedelta(days=k)).weekday() < 5
    ]


def session_times(days: Sequence[date]) -> list[datetime]:
    """A bar every BAR_STEP through each day's session."""
    times = []
    for day in days:
        moment = at(day, SESSION_OPEN)
        while moment < at(day, SESSION_CLOSE):
            times.append(moment)
            moment += BAR_STEP
    return times


# --- the AI-disruption episode ------------------------------------------------------------

LAB_REPO = "openai/openai-python"
OTHER_REPO = "anthropics/anthropic-sdk-python"
HISTORY_START = date(2026, 1, 5)
RELEASE_AT = datetime(2026, 2, 10, 16, 0, tzinfo=UTC)  # a Tuesday, in the session
EPISODE_END = date(2026, 2, 27)
SESSION_2 = date(2026, 2, 11)
SESSION_4 = date(2026, 2, 13)
SESSION_12 = date(2026, 2, 25)
BASE_PRICES = {"LZ": 8.0, "CRM": 250.0, "SHOP": 150.0, "ADBE": 350.0, "IGV": 100.0, "SPY": 600.0, "HYG": 80.0}


def _episode_curve(times: Sequence[datetime], drop: float, regained: float) -> np.ndarray:
    """1 before the release, down `drop` by the close of session 2, `regained` of it back by session 10."""
    sessions = business_days(RELEASE_AT.date(), EPISODE_END)
    knots = [RELEASE_AT, at(sessions[1], SESSION_CLOSE), at(sessions[9], SESSION_CLOSE)]
    values = [1.0, 1.0 - drop, 1.0 - drop + drop * regained]
    seconds = np.array([t.timestamp() for t in times])
    curve: np.ndarray = np.interp(seconds, [k.timestamp() for k in knots], values)
    return curve


def ai_episode(
    *,
    release_tag: str = "v2.9.0",
    headline_burst: int = 8,
    star_burst: int = 600,
    impaired_drop: float = 0.12,
    quality_dip: float = 0.06,
    gauge_dip: float = 0.03,
    macro_drop: float = 0.0,
    seed: int = 7,
) -> dict[str, pl.DataFrame]:
    """Seven weeks of session bars, releases, headlines and stars around one lab release at RELEASE_AT."""
    rng = np.random.default_rng(seed)
    days = business_days(HISTORY_START, EPISODE_END)
    times = session_times(days)
    moves = {
        "LZ": (impaired_drop, 0.6),
        "CRM": (quality_dip, 1.1),
        "SHOP": (quality_dip * 1.3, 1.1),
        "ADBE": (quality_dip, 1.1),
        "IGV": (gauge_dip, 1.0),
        "SPY": (macro_drop, 0.0),
        "HYG": (macro_drop, 0.0),
    }
    frames = []
    for symbol, base in BASE_PRICES.items():
        noise = np.exp(np.cumsum(rng.normal(0.0, 0.001, len(times))))
        drop, regained = moves[symbol]
        frames.append(bars(symbol, times, base * noise * _episode_curve(times, drop, regained)))
    # Crypto trades around the clock, so the bars feed stays fresh while US markets are closed.
    around_the_clock = [at(HISTORY_START, time(0, 0)) + k * BAR_STEP for k in range(len(days) * 7 // 5 * 96)]
    frames.append(
        bars("BTC/USD", around_the_clock, 85_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, len(around_the_clock)))))
    )

    release_rows = [(LAB_REPO, f"v2.8.{k + 1}", at(day, time(12, 0))) for k, day in enumerate(days[::4])]
    release_rows += [(OTHER_REPO, f"v0.75.{k + 1}", at(day, time(9, 0))) for k, day in enumerate(days[1::3])]
    release_rows.append((LAB_REPO, release_tag, RELEASE_AT))

    headline_rows: list[tuple[datetime, Sequence[str], Sequence[str]]] = [
        (at(day, time(13, 0)), ["openai"] if k % 2 else [], [] if k % 2 else ["CRM"]) for k, day in enumerate(days)
    ]
    headline_rows += [
        (RELEASE_AT + timedelta(minutes=5 + 40 * k), ["openai"], ["LZ"] if k == 0 else ["CRM", "ADBE"])
        for k in range(headline_burst)
    ]

    stars: list[tuple[str, datetime, int]] = []
    count = 28_000
    calendar = [HISTORY_START + timedelta(days=k) for k in range((EPISODE_END - HISTORY_START).days + 1)]
    burst_shares = (0.4, 0.3, 0.2, 0.1)
    for day in calendar:
        age = (day - RELEASE_AT.date()).days
        count += 20 + (round(star_burst * burst_shares[age]) if 0 <= age < len(burst_shares) else 0)
        stars.append((LAB_REPO, at(day, time(23, 50)), count))

    return {
        "bars": pl.concat(frames),
        "github_releases": releases(sorted(release_rows, key=lambda row: row[2])),
        "headlines": headlines(sorted(headline_rows, key=lambda row: row[0])),
        "repo_stats": repo_stats(stars),
    }


# --- the cross-asset graph ------------------------------------------------------------------

GRAPH_START = datetime(2026, 2, 2, tzinfo=UTC)
GRAPH_HOURS = 24 * 20
GRAPH_SYMBOLS = ("SPY", "TLT", "GLD", "BTC/USD", "HYG", "VIXY")
GRAPH_PRICES = {"SPY": 600.0, "TLT": 88.0, "GLD": 400.0, "BTC/USD": 85_000.0, "HYG": 80.0, "VIXY": 35.0}


def graph_returns(seed: int = 11, hours: int = GRAPH_HOURS) -> dict[str, np.ndarray]:
    """Independent hourly log returns, 0.5% a step, for every graph symbol."""
    rng = np.random.default_rng(seed)
    return {symbol: rng.normal(0.0, 0.005, hours) for symbol in GRAPH_SYMBOLS}


def plant_lag(returns: dict[str, np.ndarray], leader: str, follower: str, lag: int, beta: float) -> None:
    """follower(t) += beta x leader(t - lag): the relation the estimator should find."""
    returns[follower][lag:] += beta * returns[leader][:-lag]


def graph_tables(
    returns: Mapping[str, np.ndarray],
    *,
    vix: Sequence[float] = (16.0, 16.2),
    spread: Sequence[float] = (3.1, 3.1),
    start: datetime = GRAPH_START,
) -> dict[str, pl.DataFrame]:
    """One bar an hour for every symbol (all of them trading around the clock, for simplicity),
    and daily VIX and HY-spread prints, the last ones the day before the end."""
    hours = len(next(iter(returns.values())))
    times = [start + k * HOUR for k in range(hours)]
    frames = [
        bars(symbol, times, GRAPH_PRICES[symbol] * np.exp(np.cumsum(series))) for symbol, series in returns.items()
    ]
    end = times[-1]
    series_rows = [
        (name, end - (len(values) - k) * timedelta(days=1), value)
        for name, values in (("VIX", vix), ("BAMLH0A0HYM2", spread))
        for k, value in enumerate(values)
    ]
    return {"bars": pl.concat(frames), "market_series": market_series(series_rows)}


def graph_now(start: datetime = GRAPH_START, hours: int = GRAPH_HOURS) -> datetime:
    """Just after the last hourly bar was published."""
    return start + (hours - 1) * HOUR + 2 * MINUTE
