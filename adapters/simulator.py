"""The built-in market simulator: every feed's facts for `sim` mode, with no keys and no network.

A test bed, not a calibrated model: its episodes are frequent and loud so that a few
simulated days exercise every strategy, and each one is caused, timed and sized by the
seed alone.

API
    sim = MarketSimulator(seed=42, epoch=datetime(2026, 3, 2, tzinfo=UTC), daily_history_sessions=300)
    sim.generate(start, end)            -> {warehouse table: rows with ts_event in [start, end)}
    sim.daily_history()                 -> the daily bars before the epoch
    sim.regime_path(start, end)         -> one row per minute: ts_event, regime (the ground truth)
    sim.economic_calendar(start, end)   -> economic_events rows, cheap: no prices are simulated

`epoch` is the start of simulated minute history; windows are clipped to it, and the window
that holds the epoch brings the daily history before it too (as a new deployment backfills
daily bars), ahead of its other bars. Frames carry exactly the columns and types of
sql/schema/001_feeds.sql, `source`/`venue` 'sim'.

Exchange calendar
    Sessions, holidays and early closes are the NYSE's (core.calendar): no equity bars on a
    holiday, sessions that end at 13:00 New York on a half day, overnight gaps across
    holidays. Cadences of US-market episodes count NYSE sessions. BLS releases follow federal
    holidays instead, as the BLS does (pandas' US federal holiday calendar).

Determinism and chunk invariance
    History is simulated one UTC day at a time from the epoch's midnight. Every random draw
    comes from `np.random.default_rng([seed, stream, day, ...])`, one stream per purpose, so
    a day's facts depend only on the seed, the day and the state carried from the previous
    day (prices, regime, open interest, margins, repository counters...). Days are cached,
    and any window is cut out of whole days by ts_event: generate(a, c) equals
    generate(a, b) followed by generate(b, c), row for row. Rows are sorted by ts_event.
    Each asset draws from its own stream, so an asset's path does not change with the
    watchlist around it (the factors it loads on are shared).

Market model
    Regimes: a Markov chain over TRENDING_UP, TRENDING_DOWN, MEAN_REVERTING, HIGH_VOL, CRASH
    and RECOVERY with log-normal durations (medians 2-14 h, clipped to 20 min-36 h, so every
    3-day window sees several changes). A crash is followed by a recovery 75% of the time.
    Each regime sets factor drifts and volatility, volume, funding, VIX and HY-spread targets;
    in MEAN_REVERTING the equity factor's minute moves partly undo the previous minute's.
    Returns: seven factors (equity, rates, metals, crypto, software, dollar, credit) with
    per-asset loadings plus idiosyncratic noise. In HIGH_VOL and CRASH (risk off) TLT, UUP
    and GLD load negatively on equities and HYG and crypto more positively; VIXY loads -3x.
    Every asset has a latent price every minute; crypto bars are emitted 24/7, US equities
    and ETFs only in NYSE sessions, their latent price moving slowly overnight (and over
    weekends and holidays), so a session opens with a gap.

Daily bars
    Besides its minute bars, every asset has a `1Day` bar per NYSE session (crypto: per UTC
    day), stamped as Alpaca stamps them (midnight New York; crypto midnight UTC), the exact
    aggregate of that session's (day's) minute bars: first open, high, low, last close,
    volume and trade count summed, volume-weighted vwap.
    Before the epoch, `daily_history_sessions` sessions of daily bars per asset (UTC days for
    crypto), so windows counted in sessions are full from the first simulated minute. They
    are simulated a calendar day at a time with the same factors, loadings, risk-off switch,
    drifts (scaled down by HISTORY_DRIFT_SCALE) and regime volatility at a daily scale, the
    regime chain running a day for each hour of its minute-model durations, so the history
    has calm and stressed stretches of days to weeks; each asset's is then moved so that its
    last close is the price the minute history starts from (the first crypto minute's open,
    the latent price an equity's first session gaps from). Seeded like the rest; generated
    once per simulator, in milliseconds.

Episodes and their frequencies (d = simulated day counted from the epoch's midnight;
"session" = NYSE session; each cadence counts from the epoch with a seeded offset, so the
first three days (sessions) hold at least one of every episode)
    Funding / liquidation cascade, every 2nd day: funding builds over 6 h to 0.0008-0.0014
    per interval (x1.3 on ETH) and prints above 0.0005 at 1-2 consecutive 00/08/16 UTC
    stamps while open interest rises 6-12% and crypto drifts up 2-3.5%. 1-5 h after the last
    high print, on the same day and clear of macro releases, a cascade: open interest falls
    12-20% and BTC 4-7% (ETH x1.3) within 20-45 min, volatility x2; funding turns
    negative, 45-60% of the drop rebounds over 4 h (so crypto does not bleed across
    episodes) and open interest rebuilds over a day.
    Macro events, importance 3: NFP on the first Friday 08:30 ET (a federal holiday moves
    it to the Thursday before, or a week later in January; on Good Friday it comes out with
    the market shut), CPI on a seeded federal working day of the 10th-15th 08:30 ET, FOMC in
    8 months a year on a seeded Wednesday (a federal working day) of the 15th-28th 14:00 ET;
    and, so the strategy trades every week, an extra NFP/CPI/FOMC-typed release (title
    marked "simulated extra release") every 2nd session that has none.
    Around each: volatility x1.3 in the hour before and x2 in the first 15 minutes; a
    seeded surprise moves every asset (SPY 0.8-1.45%; hawkish = stocks, bonds, gold and
    crypto down, dollar and VIXY up), half in the first 15 minutes after the reaction
    starts (at the event for crypto, at the next session minute for equities, so an 08:30
    release shows in the 09:30 candle) and half over the next 45 minutes.
    Metals week, every 5th session (first on session 1 or 2): the Shanghai premium (about
    0.8%) falls 1.5-2.5 points between the AM fixing (10:15 Beijing) and the PM fixing and
    recovers over the next 22-30 h, through the next day's fixings, while GLD rallies 3-5%
    (SLV x1.8, GDX x1.6) in the sessions of those hours. 15-105 minutes after the session's
    close (16:15-17:45 ET on a full day), a CME margin hike: GC maintenance +8-20% and SI
    1-1.4x that (change_pct is in percent), effective the next session; over the next two
    sessions GLD falls 3-5%, SLV 1.8x and GDX 1.6x as much. A cut back to 100-110% of base
    follows 45 minutes after the close of a session when GC stands 35% above base, keeping
    margins bounded.
    AI-lab release, every 10th session (first on session 1-3) at 14:00-21:00 UTC:
    a minor (80%) or major version of a lab repository; LZ falls 10-16% over the next two
    sessions (counted from the release) and regains 60% of it over sessions 3-10; CRM, ADBE
    (5-8%), SHOP (x1.3), WDAY (x0.8) and IGV (x0.5) dip over sessions 1-2 and regain 110%
    (WDAY 90%, IGV 100%) over sessions 3-10; 6-10 headlines within 6 h name the lab and the
    tickers (the first one LZ), and the repository gains 2-5% more stars over four days.
    Patch releases come at random, each repository on 30% of days, with no market effect;
    routine headlines 2-5 a day. A tag ends in ".0" exactly when the release is a launch.
    VIX and the high-yield spread, one value per session at its close, move toward
    the regime target of the day's most stressed hours (VIX 14 in TRENDING_UP to 42 in
    CRASH, the spread 3.0 to 6.0), so both rise with HIGH_VOL and CRASH.

Publication latencies (ts_ingested - ts_event)
    minute bars +1 min (the bar's close); daily bars a minute after their close (the session's,
    13:00 New York on a half day; a crypto day's end); funding +5 s; premium index +2 s; open interest +30 s;
    margin snapshots +1 min; margin notices 0 (the notice time); metal premiums +15 min;
    economic events -7 days (scheduled ahead); GitHub releases +2 min; repo stats +1 min;
    headlines +5 min; VIX +15 min; BAMLH0A0HYM2 +18 h (FRED publishes it the next day).
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl

from adapters.tables import TABLE_SCHEMAS, TIMESTAMP
from core.calendar import MarketCalendar, Timeframe, market_calendar
from core.config import DEFAULT_WATCHLIST, is_crypto
from core.snapshot import from_micros, micros

SOURCE = "sim"
MINUTES_PER_DAY = 1440
MICROS_PER_MINUTE = 60_000_000
MICROS_PER_SECOND = 1_000_000
US_EASTERN = ZoneInfo("America/New_York")
# Sessions come from the exchange calendar; this is only the variance budget: equities' latent
# price keeps moving overnight, at a tenth of the per-minute variance, so sessions open with
# realistic gaps, and the minutes of a regular session (6.5 h) carry the rest of a day's variance.
# A half day trades fewer minutes at the same weight, so it is a quieter day, as it is in fact.
REGULAR_SESSION_MINUTES = 390
OFF_SESSION_WEIGHT = 0.1
ON_SESSION_WEIGHT = (
    MINUTES_PER_DAY - (MINUTES_PER_DAY - REGULAR_SESSION_MINUTES) * OFF_SESSION_WEIGHT
) / REGULAR_SESSION_MINUTES
# The share of a regular weekday's variance that falls outside its session.
OFF_SESSION_SHARE = (MINUTES_PER_DAY - REGULAR_SESSION_MINUTES) * OFF_SESSION_WEIGHT / MINUTES_PER_DAY
# The longest episode effect (10 sessions after an AI release) ends within 21 days, even across
# the longest closure on record (September 2001); 18 is the most in the calendar after 2026.
LOOKBACK_DAYS = 22
FUNDING_STAMPS = (0, 480, 960)
PREMIUM_EVERY_MINUTES = 5

REGIME_SCHEMA: dict[str, pl.DataType] = {"ts_event": TIMESTAMP, "regime": pl.String()}


class _Stream(IntEnum):
    """One random stream per purpose: more draws for one fact never shift another."""

    INITIAL = 0
    PHASES = 1
    REGIME = 2
    FACTORS = 3
    ASSET = 4
    FUNDING_EPISODE = 5
    MACRO = 6
    CALENDAR = 7
    MARGIN = 8
    MARGIN_CUT = 9
    AI_RELEASE = 10
    PREMIUM_EPISODE = 11
    DERIVATIVES = 12
    FIXINGS = 13
    SERIES = 14
    RELEASES = 15
    REPO_STATS = 16
    HEADLINES = 17
    HISTORY_REGIME = 18
    HISTORY_FACTORS = 19
    HISTORY_ASSET = 20


# --- regimes -------------------------------------------------------------------------------

REGIMES = ("TRENDING_UP", "TRENDING_DOWN", "MEAN_REVERTING", "HIGH_VOL", "CRASH", "RECOVERY")
TRENDING_UP, TRENDING_DOWN, MEAN_REVERTING, HIGH_VOL, CRASH, RECOVERY = range(len(REGIMES))


@dataclass(frozen=True)
class RegimeParams:
    """Drifts are log returns per day of the 24 h clock (equities get theirs in session)."""

    median_hours: float
    equity_drift: float
    crypto_drift: float
    credit_drift: float
    vol: float
    reversion: float
    vix: float
    hy_spread: float
    funding: float
    oi_drift: float
    risk_off: bool


REGIME_PARAMS: tuple[RegimeParams, ...] = (
    RegimeParams(14, 0.008, 0.02, 0.0005, 0.8, 0.0, 14.0, 3.0, 0.00015, 0.02, False),
    RegimeParams(10, -0.008, -0.02, -0.001, 1.1, 0.0, 21.0, 3.6, 0.00003, -0.01, False),
    RegimeParams(12, 0.0, 0.0, 0.0, 0.7, 0.35, 15.0, 3.1, 0.0001, 0.0, False),
    RegimeParams(6, 0.0, -0.005, -0.002, 2.0, 0.0, 28.0, 4.3, 0.00005, -0.02, True),
    RegimeParams(2, -0.12, -0.2, -0.02, 3.0, 0.0, 42.0, 6.0, -0.0002, -0.15, True),
    RegimeParams(8, 0.03, 0.05, 0.004, 1.3, 0.0, 22.0, 4.0, 0.00008, 0.02, False),
)
# Rows: from; columns: to. A crash mostly ends in recovery; nothing jumps into recovery
# except from stress.
TRANSITIONS = np.array(
    [
        [0.0, 0.2, 0.45, 0.25, 0.1, 0.0],
        [0.15, 0.0, 0.3, 0.3, 0.25, 0.0],
        [0.35, 0.3, 0.0, 0.25, 0.1, 0.0],
        [0.1, 0.25, 0.2, 0.0, 0.3, 0.15],
        [0.0, 0.05, 0.0, 0.2, 0.0, 0.75],
        [0.5, 0.0, 0.35, 0.15, 0.0, 0.0],
    ]
)
REGIME_DURATION_SPREAD = 0.6
STRESS_QUANTILE = 0.9
REGIME_MIN_MINUTES = 20
REGIME_MAX_MINUTES = 36 * 60


def _regime_array(attribute: str) -> npt.NDArray[np.float64]:
    return np.array([getattr(params, attribute) for params in REGIME_PARAMS], dtype=np.float64)


REGIME_VOL = _regime_array("vol")
REGIME_REVERSION = _regime_array("reversion")
REGIME_VIX = _regime_array("vix")
REGIME_HY = _regime_array("hy_spread")
REGIME_FUNDING = _regime_array("funding")
REGIME_OI_DRIFT = _regime_array("oi_drift") / MINUTES_PER_DAY
REGIME_RISK_OFF = np.array([params.risk_off for params in REGIME_PARAMS])
# Idiosyncratic noise reacts to stress less than the factors do.
REGIME_IDIO_VOL = 1.0 + (REGIME_VOL - 1.0) / 2

# --- assets --------------------------------------------------------------------------------

FACTORS = ("equity", "rates", "metals", "crypto", "software", "dollar", "credit")
FACTOR_DAILY_VOL = np.array([0.010, 0.006, 0.010, 0.025, 0.009, 0.0035, 0.0025])
# How fully each factor's volatility follows the regime's: stress is a market, credit and
# crypto affair; sector factors feel half of it.
FACTOR_STRESS = np.array([1.0, 0.5, 0.5, 1.0, 0.5, 0.5, 1.0])
FACTOR_DRIFTS = np.stack(
    [
        _regime_array("equity_drift"),
        np.zeros(len(REGIMES)),
        np.zeros(len(REGIMES)),
        _regime_array("crypto_drift"),
        np.zeros(len(REGIMES)),
        np.zeros(len(REGIMES)),
        _regime_array("credit_drift"),
    ],
    axis=1,
)


@dataclass(frozen=True)
class AssetProfile:
    """Starting price, factor loadings (risk_off overrides some), daily idiosyncratic vol,
    mean volume per minute, mean trade size and the move per unit of hawkish surprise (%)."""

    price: float
    loadings: dict[str, float]
    idio: float
    volume: float
    trade_size: float
    macro: float
    risk_off: dict[str, float] = field(default_factory=dict)
    drift: float = 0.0
    open_interest: float = 1_000_000.0
    leverage: float = 1.0


ASSETS: dict[str, AssetProfile] = {
    "BTC/USD": AssetProfile(
        85_000.0, {"equity": 0.5, "crypto": 1.0}, 0.010, 3.0, 0.05, -1.0, {"equity": 0.8}, open_interest=90_000.0
    ),
    "ETH/USD": AssetProfile(
        2_200.0,
        {"equity": 0.6, "crypto": 1.25},
        0.015,
        40.0,
        0.8,
        -1.3,
        {"equity": 0.9},
        open_interest=2_000_000.0,
        leverage=1.3,
    ),
    "SPY": AssetProfile(600.0, {"equity": 1.0}, 0.001, 40_000.0, 100.0, -0.8),
    "TLT": AssetProfile(88.0, {"equity": 0.1, "rates": 1.0}, 0.002, 12_000.0, 100.0, -0.7, {"equity": -0.35}),
    "GLD": AssetProfile(
        400.0,
        {"equity": 0.05, "metals": 1.0, "dollar": -0.4, "rates": 0.2},
        0.002,
        5_000.0,
        50.0,
        -0.6,
        {"equity": -0.1},
    ),
    "SLV": AssetProfile(45.0, {"equity": 0.3, "metals": 1.5, "dollar": -0.4}, 0.008, 15_000.0, 100.0, -0.9),
    "GDX": AssetProfile(75.0, {"equity": 0.5, "metals": 1.8}, 0.008, 10_000.0, 100.0, -1.1),
    "IGV": AssetProfile(100.0, {"equity": 1.1, "software": 1.0}, 0.003, 2_000.0, 50.0, -1.0),
    "CRM": AssetProfile(250.0, {"equity": 1.0, "software": 1.2}, 0.010, 3_000.0, 50.0, -0.9),
    "SHOP": AssetProfile(150.0, {"equity": 1.4, "software": 1.5}, 0.018, 4_000.0, 60.0, -1.3),
    "ADBE": AssetProfile(350.0, {"equity": 1.0, "software": 1.1}, 0.010, 1_500.0, 40.0, -0.9),
    "MSFT": AssetProfile(500.0, {"equity": 1.0, "software": 0.7}, 0.007, 8_000.0, 60.0, -0.8),
    "WDAY": AssetProfile(230.0, {"equity": 1.0, "software": 1.2}, 0.011, 1_000.0, 40.0, -0.9),
    "LZ": AssetProfile(8.0, {"equity": 0.9, "software": 0.8}, 0.015, 3_000.0, 150.0, -1.0),
    "HYG": AssetProfile(
        80.0, {"equity": 0.25, "credit": 1.0, "rates": 0.3}, 0.001, 10_000.0, 100.0, -0.25, {"equity": 0.45}
    ),
    "QQQ": AssetProfile(520.0, {"equity": 1.15, "software": 0.3}, 0.002, 25_000.0, 100.0, -1.0),
    "IWM": AssetProfile(230.0, {"equity": 1.2, "credit": 0.3}, 0.004, 15_000.0, 100.0, -1.1),
    # VIXY bleeds in contango and moves about three times SPY, the other way.
    "VIXY": AssetProfile(35.0, {"equity": -3.0}, 0.015, 6_000.0, 100.0, 2.5, drift=-0.003),
    "UUP": AssetProfile(27.0, {"equity": -0.05, "dollar": 1.0}, 0.001, 2_500.0, 100.0, 0.35, {"equity": -0.2}),
}
DEFAULT_EQUITY = AssetProfile(100.0, {"equity": 1.0}, 0.015, 2_000.0, 50.0, -0.9)
DEFAULT_CRYPTO = AssetProfile(50.0, {"equity": 0.6, "crypto": 1.2}, 0.02, 500.0, 20.0, -1.2, {"equity": 0.9})
# The daily history before the epoch: sessions of daily bars per asset (UTC days for crypto).
DAILY_HISTORY_SESSIONS = 300
# It runs the regime chain at a slower clock, a day for each hour of the minute model's
# durations, so its calm and stressed stretches last weeks; drifts are scaled down to match
# (a crash loses a few percent a day, a trend makes about 25% a year).
HISTORY_DRIFT_SCALE = 0.125
# The gold reference (and so the Shanghai premium) is read off GLD, simulated even when
# the watchlist leaves it out.
GOLD_SYMBOL = "GLD"
GOLD_OZ_PER_SHARE = 10.87
GRAMS_PER_TROY_OUNCE = 31.1034768

# --- episodes ------------------------------------------------------------------------------

# Cadences are counted from the epoch with a small seeded offset, so the first three days
# (NYSE sessions) always hold one of each. Metals episodes come weekly and AI releases
# fortnightly so that one episode's aftermath is over before the next begins.
FUNDING_CADENCE_DAYS = 2
MACRO_EXTRA_CADENCE_SESSIONS = 2
METALS_CADENCE_SESSIONS = 5
AI_CADENCE_SESSIONS = 10

MACRO_TYPES = ("NFP", "CPI", "FOMC")
# CME posts margin changes after the session's close: a hike 15-105 minutes after it (16:15-17:45
# New York after a regular close; the upper bound is exclusive), a cut 45 minutes after.
HIKE_AFTER_CLOSE_MINUTES = (15, 106)
CUT_AFTER_CLOSE_MINUTES = 45
MACRO_TIMES = {"NFP": time(8, 30), "CPI": time(8, 30), "FOMC": time(14, 0)}
FOMC_MONTHS = (1, 3, 4, 6, 7, 9, 10, 12)
MACRO_FIRST_CANDLE_MINUTES = 15
MACRO_DRIFT_MINUTES = 60
MACRO_FIRST_CANDLE_SHARE = 0.5

GC_BASE_MAINTENANCE = 16_500.0
SI_BASE_MAINTENANCE = 15_000.0
INITIAL_TO_MAINTENANCE = 1.1
MARGIN_CUT_TRIGGER = 1.35
# Silver and miners move more than gold, in the sell-off after a margin hike and in the
# rally as the Shanghai premium recovers; the two roughly offset over weeks.
METALS_BETA = {"GLD": 1.0, "SLV": 1.8, "GDX": 1.6}

# How each software name reacts to an AI release, relative to the drawn dip:
# (dip over sessions 1-2, share of the dip regained over sessions 3-10). What LZ does not
# regain compounds into a slow decline, release after release.
AI_SHOCK = {"CRM": (1.0, 1.1), "ADBE": (1.0, 1.1), "SHOP": (1.3, 1.1), "WDAY": (0.8, 0.9), "IGV": (0.5, 1.0)}
AI_IMPAIRED = "LZ"
AI_IMPAIRED_RECOVERY = 0.6
AI_SHOCK_SESSIONS = 2
AI_RECOVERY_SESSIONS = 10
STAR_BURST_SHARES = (0.4, 0.3, 0.2, 0.1)
ROUTINE_RELEASE_PROBABILITY = 0.3
RELEASE_ID_BASE = 200_000_000


@dataclass(frozen=True)
class LabRepo:
    repo: str
    lab: str
    display: str
    version: tuple[int, int, int]
    stars: int
    forks: int


LAB_REPOS: tuple[LabRepo, ...] = (
    LabRepo("openai/openai-python", "openai", "OpenAI", (2, 8, 0), 28_000, 4_200),
    LabRepo("anthropics/anthropic-sdk-python", "anthropic", "Anthropic", (0, 75, 0), 2_900, 400),
    LabRepo("google-deepmind/gemma", "google-deepmind", "Google DeepMind", (3, 1, 0), 3_600, 500),
    LabRepo("meta-llama/llama-models", "meta-llama", "Meta", (0, 9, 0), 7_400, 1_300),
    LabRepo("mistralai/mistral-inference", "mistralai", "Mistral AI", (1, 6, 0), 10_500, 950),
)
AI_HEADLINES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("{lab} launches a new agent model; legal-services software slides", ("LZ",)),
    ("LegalZoom shares drop after {lab} unveils document automation", ("LZ",)),
    ("{lab} release rattles SaaS incumbents", ("CRM", "ADBE", "SHOP")),
    ("Software ETF falls as {lab} ships a model update", ("IGV",)),
    ("Salesforce and Adobe slip as investors weigh {lab}'s launch", ("CRM", "ADBE")),
    ("Shopify dips on {lab} commerce agent news", ("SHOP",)),
    ("Analysts call the software sell-off after {lab}'s launch overdone", ("CRM", "SHOP", "ADBE")),
    ("{lab} developer SDK trends on GitHub after the launch", ()),
)
ROUTINE_HEADLINES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("{lab} publishes a research update", (), True),
    ("{lab} expands API availability", (), True),
    ("Stocks drift as traders weigh the rate outlook", ("SPY", "QQQ"), False),
    ("Bitcoin leverage in focus as funding rates move", ("BTC/USD",), False),
    ("Gold steadies as Shanghai demand is watched", ("GLD",), False),
    ("Cloud software earnings preview: Salesforce, Workday in focus", ("CRM", "WDAY"), False),
)

PREMIUM_MEAN_PCT = 0.8
PREMIUM_FIXINGS = (("AM", time(10, 15)), ("PM", time(14, 15)))
SHANGHAI = ZoneInfo("Asia/Shanghai")
MARGIN_SNAPSHOT_MINUTE = 23 * 60
REPO_SNAPSHOT_MINUTE = 23 * 60 + 50

LATENCY_US = {
    "bars": MICROS_PER_MINUTE,
    "funding_rates": 5 * MICROS_PER_SECOND,
    "premium_index": 2 * MICROS_PER_SECOND,
    "open_interest": 30 * MICROS_PER_SECOND,
    "margin_rates": MICROS_PER_MINUTE,
    "margin_notices": 0,
    "metal_premiums": 15 * MICROS_PER_MINUTE,
    "economic_events": -7 * MINUTES_PER_DAY * MICROS_PER_MINUTE,
    "github_releases": 2 * MICROS_PER_MINUTE,
    "repo_stats": MICROS_PER_MINUTE,
    "headlines": 5 * MICROS_PER_MINUTE,
    "VIX": 15 * MICROS_PER_MINUTE,
    "BAMLH0A0HYM2": 18 * 60 * MICROS_PER_MINUTE,
}
# A daily bar is final a little after its close, when the closing prints are in.
DAILY_BAR_DELAY_US = MICROS_PER_MINUTE


# --- scheduled episodes: pure functions of (seed, day) ---------------------------------------


@dataclass(frozen=True)
class _Move:
    """A total log move of one asset, spread evenly over the minutes of its intervals."""

    column: int
    intervals: tuple[tuple[int, int], ...]
    rate: float


@dataclass(frozen=True)
class _VolBump:
    """Volatility times `factor`: of the asset's own noise only when `own`, so an episode
    of one asset does not also amplify its exposure to the market."""

    column: int
    start: int
    end: int
    factor: float
    own: bool


@dataclass(frozen=True)
class _Curve:
    """A piecewise-linear overlay, zero outside its knots (minutes from the origin); for
    funding and open interest `column` counts the crypto assets only."""

    column: int
    knots: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class _MacroEvent:
    event_type: str
    minute: int
    title: str
    surprise: float


@dataclass(frozen=True)
class _Hike:
    minute: int
    gc_pct: float
    si_pct: float


@dataclass(frozen=True)
class _MajorRelease:
    repo: int
    minute: int
    major: bool
    star_burst: int


@dataclass(frozen=True)
class _Headline:
    minute: int
    item_id: str
    title: str
    tickers: tuple[str, ...]
    labs: tuple[str, ...]


@dataclass
class _Schedule:
    moves: list[_Move] = field(default_factory=list)
    vol: list[_VolBump] = field(default_factory=list)
    open_interest: list[_Curve] = field(default_factory=list)
    funding: list[_Curve] = field(default_factory=list)
    premium: list[_Curve] = field(default_factory=list)
    events: list[_MacroEvent] = field(default_factory=list)
    hike: _Hike | None = None
    release: _MajorRelease | None = None
    headlines: list[_Headline] = field(default_factory=list)

    def move(self, column: int, intervals: Sequence[tuple[int, int]], total: float) -> None:
        length = sum(end - start for start, end in intervals)
        if length > 0:
            self.moves.append(_Move(column, tuple(intervals), total / length))

    def bump(self, column: int, intervals: Sequence[tuple[int, int]], factor: float, *, own: bool = False) -> None:
        self.vol.extend(_VolBump(column, start, end, factor, own) for start, end in intervals if end > start)


@dataclass(frozen=True)
class _Phases:
    """Offsets of each cadence from the epoch, in days or business days."""

    funding: int
    macro: int
    metals: int
    ai: int


# --- carried state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _RepoState:
    version: tuple[int, int, int]
    releases: int
    stars: int
    forks: int
    open_issues: int


@dataclass(frozen=True)
class _DayState:
    """Everything one day hands to the next: the simulation is a chain of these."""

    regime: int
    regime_left: int
    log_price: npt.NDArray[np.float64]
    equity_shock: float
    log_open_interest: npt.NDArray[np.float64]
    premium: float
    usd_cny: float
    vix: float
    hy_spread: float
    margins: tuple[float, float]
    pending_margins: tuple[float, float, int] | None
    repos: tuple[_RepoState, ...]


@dataclass(frozen=True)
class _PricePath:
    """One day of every asset's latent minute prices and what the bars are drawn from."""

    log_open: npt.NDArray[np.float64]
    log_close: npt.NDArray[np.float64]
    in_session: npt.NDArray[np.bool_]
    session: tuple[int, int] | None  # the NYSE session's first and end minute of the day
    equity_shock: float
    sigma: npt.NDArray[np.float64]
    surprise: npt.NDArray[np.float64]
    range_noise: npt.NDArray[np.float64]
    volume_noise: npt.NDArray[np.float64]
    activity: npt.NDArray[np.float64]


@dataclass(frozen=True)
class _DayOutput:
    tables: dict[str, pl.DataFrame]
    regimes: pl.DataFrame


class MarketSimulator:
    """Every feed's facts for `sim` mode; see the module docstring for the model."""

    CACHED_DAYS = 8

    def __init__(
        self,
        *,
        seed: int,
        epoch: datetime,
        watchlist: Sequence[str] = DEFAULT_WATCHLIST,
        daily_history_sessions: int = DAILY_HISTORY_SESSIONS,
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware (UTC)")
        if daily_history_sessions < 0:
            raise ValueError(f"daily_history_sessions must be >= 0, got {daily_history_sessions}")
        symbols = tuple(watchlist)
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError("watchlist must be non-empty and without repeats")
        self._seed = seed
        self._epoch = epoch.astimezone(UTC)
        self._origin = self._epoch.replace(hour=0, minute=0, second=0, microsecond=0)
        self._origin_us = micros(self._origin)
        self._watchlist = symbols
        self._symbols = symbols if GOLD_SYMBOL in symbols else (*symbols, GOLD_SYMBOL)
        self._column = {symbol: j for j, symbol in enumerate(self._symbols)}
        profiles = [_profile(symbol) for symbol in self._symbols]
        self._profiles = profiles
        self._is_crypto = np.array([is_crypto(symbol) for symbol in self._symbols])
        self._crypto_columns = [j for j, symbol in enumerate(self._symbols) if is_crypto(symbol)]
        self._venue_symbols = [self._symbols[j].replace("/USD", "USDT") for j in self._crypto_columns]
        self._loadings_calm = _loading_matrix(profiles, risk_off=False)
        self._loadings_risk_off = _loading_matrix(profiles, risk_off=True)
        factor_vol = FACTOR_DAILY_VOL / np.sqrt(MINUTES_PER_DAY)
        self._factor_vol = factor_vol
        self._idio_vol = np.array([p.idio for p in profiles]) / np.sqrt(MINUTES_PER_DAY)
        self._total_vol = np.sqrt((self._loadings_calm * factor_vol) ** 2 @ np.ones(len(FACTORS)) + self._idio_vol**2)
        self._asset_drift = np.array([p.drift for p in profiles]) / MINUTES_PER_DAY
        self._volume = np.array([p.volume for p in profiles])
        self._trade_size = np.array([p.trade_size for p in profiles])
        self._symbol_keys = [zlib.crc32(symbol.encode()) for symbol in self._symbols]
        phases = self._rng(_Stream.PHASES)
        self._phases = _Phases(
            funding=int(phases.integers(FUNDING_CADENCE_DAYS)),
            macro=int(phases.integers(MACRO_EXTRA_CADENCE_SESSIONS)),
            # The metals week starts on the first or second session, so the premium's
            # recovery the day after is inside the first three too.
            metals=int(phases.integers(2)),
            ai=int(phases.integers(3)),
        )
        self._calendar: MarketCalendar = market_calendar()
        self._nyse = self._calendar.equities
        # Cadences count NYSE sessions from the first one on or after the origin's date.
        self._first_session = self._nyse.first_on_or_after(self._origin.date())
        if self._first_session < daily_history_sessions:
            raise ValueError(
                f"{daily_history_sessions} sessions of daily history before {self._origin.date().isoformat()} "
                f"reach before the calendar's first session, {self._nyse.first_day.isoformat()}"
            )
        self._daily_history_sessions = daily_history_sessions
        self._history: pl.DataFrame | None = None
        self._states: list[_DayState] = [self._initial_state()]
        self._outputs: OrderedDict[int, _DayOutput] = OrderedDict()
        self._schedules: dict[int, _Schedule] = {}
        self._sessions: dict[int, tuple[int, int] | None] = {}
        self._federal_holidays: dict[int, frozenset[date]] = {}

    # --- public API ------------------------------------------------------------------------

    def generate(self, start: datetime, end: datetime) -> dict[str, pl.DataFrame]:
        """Every feed table's rows with ts_event in [start, end), sorted by ts_event.

        The window is clipped to the epoch; the window that holds the epoch also brings the
        daily bars stamped before it (the history a new deployment backfills), first.
        """
        first, last, low, high = self._window(start, end)
        days = [self._day(day).tables for day in range(first, last + 1)]
        frames = {}
        for table, schema in TABLE_SCHEMAS.items():
            parts = [tables[table] for tables in days]
            frames[table] = _cut(parts, schema, low, high)
        if low == self._epoch < high:
            frames["bars"] = pl.concat([self.daily_history(), frames["bars"]])
        return frames

    def daily_history(self) -> pl.DataFrame:
        """The daily bars stamped before the epoch: `daily_history_sessions` sessions per asset
        (UTC days for crypto) that end where the simulation starts, then the bars of the epoch's
        own day if they are stamped before it (an epoch after midnight)."""
        if self._history is None:
            history = self._simulate_daily_history()
            if self._epoch > self._origin:
                own_day = self._day(0).tables["bars"]
                early = own_day.filter(pl.col("timeframe") == Timeframe.DAY_1.value, pl.col("ts_event") < self._epoch)
                history = pl.concat([history, early])
            self._history = history
        return self._history

    def regime_path(self, start: datetime, end: datetime) -> pl.DataFrame:
        """The regime in force each minute of [start, end): the ground truth for detection."""
        first, last, low, high = self._window(start, end)
        parts = [self._day(day).regimes for day in range(first, last + 1)]
        return _cut(parts, REGIME_SCHEMA, low, high)

    def economic_calendar(self, start: datetime, end: datetime) -> pl.DataFrame:
        """The economic_events rows of [start, end), without simulating prices.

        Events are published a week ahead; a flow that ingests one minute at a time can load
        the coming week's calendar from here so strategies see events before they happen.
        """
        first, last, low, high = self._window(start, end)
        parts = [self._economic_events(day) for day in range(first, last + 1)]
        return _cut(parts, TABLE_SCHEMAS["economic_events"], low, high)

    # --- days and windows --------------------------------------------------------------------

    def _window(self, start: datetime, end: datetime) -> tuple[int, int, datetime, datetime]:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        low = max(start.astimezone(UTC), self._epoch)
        high = end.astimezone(UTC)
        if high <= low:
            return 0, -1, low, high
        day_us = MINUTES_PER_DAY * MICROS_PER_MINUTE
        first = (micros(low) - self._origin_us) // day_us
        last = (micros(high) - self._origin_us - 1) // day_us
        return first, last, low, high

    def _day(self, day: int) -> _DayOutput:
        cached = self._outputs.get(day)
        if cached is not None:
            self._outputs.move_to_end(day)
            return cached
        while len(self._states) <= day:
            # Days before the one asked for run only for their end state, which is cached.
            self._remember(len(self._states) - 1, *self._simulate(len(self._states) - 1))
        output, state = self._simulate(day)
        self._remember(day, output, state)
        return output

    def _remember(self, day: int, output: _DayOutput, state: _DayState) -> None:
        if len(self._states) == day + 1:
            self._states.append(state)
        self._outputs[day] = output
        self._outputs.move_to_end(day)
        while len(self._outputs) > self.CACHED_DAYS:
            self._outputs.popitem(last=False)

    def _rng(self, stream: _Stream, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self._seed, int(stream), *keys])

    def _date(self, day: int) -> date:
        return self._origin.date() + timedelta(days=day)

    def _minute_at(self, on: date, at: time, zone: ZoneInfo = US_EASTERN) -> int:
        """Minutes from the origin to a local wall-clock time (DST-correct via zoneinfo)."""
        moment = datetime.combine(on, at, tzinfo=zone).astimezone(UTC)
        return int((moment - self._origin).total_seconds() // 60)

    def _session(self, day: int) -> tuple[int, int] | None:
        """The NYSE session held on the day's date, in minutes from the origin: its open and
        close (13:00 New York on a half day); None on a holiday or a weekend."""
        if day not in self._sessions:
            index = self._nyse.session_on(self._date(day))
            self._sessions[day] = (
                None
                if index is None
                else (self._minute_of(int(self._nyse.opens[index])), self._minute_of(int(self._nyse.closes[index])))
            )
        return self._sessions[day]

    def _minute_of(self, moment_us: int) -> int:
        return (moment_us - self._origin_us) // MICROS_PER_MINUTE

    def _sessions_after(self, minute: int, count: int) -> list[tuple[int, int]]:
        """The next `count` sessions still open after `minute`, the first clipped to start there."""
        found: list[tuple[int, int]] = []
        day = minute // MINUTES_PER_DAY
        while len(found) < count:
            session = self._session(day)
            if session is not None and session[1] > minute:
                found.append((max(session[0], minute), session[1]))
            day += 1
        return found

    def _session_overlap(self, start: int, end: int) -> list[tuple[int, int]]:
        overlap = []
        for day in range(start // MINUTES_PER_DAY, (end - 1) // MINUTES_PER_DAY + 1):
            session = self._session(day)
            if session is not None and max(session[0], start) < min(session[1], end):
                overlap.append((max(session[0], start), min(session[1], end)))
        return overlap

    def _on_cadence(self, on: date, cadence: int, offset: int) -> bool:
        """Whether `on` is a NYSE session `offset` + a multiple of `cadence` sessions from the first."""
        index = self._nyse.session_on(on)
        return index is not None and (index - self._first_session - offset) % cadence == 0

    def _next_session_day(self, on: date) -> date:
        return self._nyse.day_of(self._nyse.first_on_or_after(on + timedelta(days=1)))

    def _federal_working_day(self, on: date) -> bool:
        """Whether US federal offices work on `on`: the BLS publishes on these, NYSE session or not
        (the jobs report came out on Good Friday 2021 with the market shut)."""
        if on.year not in self._federal_holidays:
            # Imported here: pandas costs a second to import, and only a running simulation needs it.
            from pandas.tseries.holiday import USFederalHolidayCalendar

            holidays = USFederalHolidayCalendar().holidays(date(on.year, 1, 1), date(on.year, 12, 31))
            self._federal_holidays[on.year] = frozenset(holidays.date)
        return on.weekday() < 5 and on not in self._federal_holidays[on.year]

    # --- the initial state ------------------------------------------------------------------

    def _initial_state(self) -> _DayState:
        rng = self._rng(_Stream.INITIAL)
        regime = int(rng.choice([TRENDING_UP, MEAN_REVERTING, TRENDING_DOWN]))
        left = max(1, int(self._regime_duration(rng, regime) * rng.uniform(0.2, 1.0)))
        jitter = np.array([self._rng(_Stream.INITIAL, key).normal(0.0, 0.02) for key in self._symbol_keys])
        log_price = np.log([p.price for p in self._profiles]) + jitter
        log_oi = np.log([self._profiles[j].open_interest for j in self._crypto_columns])
        repos = tuple(_RepoState(lab.version, 0, lab.stars, lab.forks, 120) for lab in LAB_REPOS)
        return _DayState(
            regime=regime,
            regime_left=left,
            log_price=log_price,
            equity_shock=0.0,
            log_open_interest=np.asarray(log_oi, dtype=np.float64),
            premium=PREMIUM_MEAN_PCT + float(rng.normal(0.0, 0.1)),
            usd_cny=7.15,
            vix=16.0,
            hy_spread=3.1,
            margins=(GC_BASE_MAINTENANCE, SI_BASE_MAINTENANCE),
            pending_margins=None,
            repos=repos,
        )

    def _regime_duration(self, rng: np.random.Generator, regime: int) -> int:
        median = REGIME_PARAMS[regime].median_hours * 60
        drawn = median * float(np.exp(rng.normal(0.0, REGIME_DURATION_SPREAD)))
        return int(np.clip(drawn, REGIME_MIN_MINUTES, REGIME_MAX_MINUTES))

    # --- the daily history before the epoch ------------------------------------------------------

    def _simulate_daily_history(self) -> pl.DataFrame:
        """Daily bars of the sessions before the origin's date, simulated a calendar day at a
        time with the minute model's factors, loadings, drifts and regime volatility at a daily
        scale, then moved so that each asset's last close is the price the simulation starts from.

        A calendar day's move comes in two parts: outside the session (an equity's overnight
        gap; a tenth of a day's variance on days without a session) and in it; crypto trades
        both. The regime chain runs a day for each hour of the minute model's durations.
        """
        count = self._daily_history_sessions
        if count == 0:
            return pl.DataFrame(schema=TABLE_SCHEMAS["bars"])
        sessions = slice(self._first_session - count, self._first_session)
        session_days = self._nyse.days[sessions]
        origin_day = np.datetime64(self._origin.date(), "D")
        grid = np.arange(min(session_days[0], origin_day - count), origin_day)
        days, n = grid.size, len(self._symbols)
        in_session = np.isin(grid, session_days)
        session_minutes = np.zeros(days)
        session_minutes[in_session] = (self._nyse.closes[sessions] - self._nyse.opens[sessions]) / MICROS_PER_MINUTE
        traded = self._is_crypto[None, :] | in_session[:, None]
        # Variance (and drift) weights of each day's two parts: (days, parts, assets).
        weight = np.stack(
            [np.where(traded, OFF_SESSION_SHARE, OFF_SESSION_WEIGHT), np.where(traded, 1 - OFF_SESSION_SHARE, 0.0)],
            axis=1,
        )

        codes = self._history_regimes(days)
        regime_vol = REGIME_VOL[codes]
        risk_off = REGIME_RISK_OFF[codes][:, None]
        factor = self._rng(_Stream.HISTORY_FACTORS).standard_normal((days, 2, len(FACTORS)))
        factor *= FACTOR_DAILY_VOL * (1 + (regime_vol[:, None, None] - 1) * FACTOR_STRESS)
        systematic = np.where(risk_off[:, :, None], factor @ self._loadings_risk_off.T, factor @ self._loadings_calm.T)
        noise = np.stack(
            [self._rng(_Stream.HISTORY_ASSET, key).standard_normal((5, days)) for key in self._symbol_keys], axis=2
        )
        idio = np.moveaxis(noise[:2], 0, 1) * self._idio_vol * np.sqrt(MINUTES_PER_DAY)
        idio *= REGIME_IDIO_VOL[codes][:, None, None]
        factor_drift = FACTOR_DRIFTS[codes] * HISTORY_DRIFT_SCALE
        drift = np.where(risk_off, factor_drift @ self._loadings_risk_off.T, factor_drift @ self._loadings_calm.T)
        shock = (systematic + idio) * np.sqrt(weight)
        returns = shock + (drift + self._asset_drift * MINUTES_PER_DAY)[:, None, :] * weight

        # Crypto's bars are the last `count` days', an equity's its sessions'; each asset's last
        # bar closes at the price the simulation starts from.
        bars = np.where(self._is_crypto[None, :], (grid >= origin_day - count)[:, None], in_session[:, None])
        log_close = np.cumsum(returns.sum(axis=1), axis=0)
        log_open = np.vstack([np.zeros((1, n)), log_close[:-1]]) + returns[:, 0, :]
        last_bar = days - 1 - np.argmax(bars[::-1], axis=0)
        # Subtracting the last close first makes it exactly the starting price, not a rounding away.
        last_close, start = log_close[last_bar, np.arange(n)], self._states[0].log_price
        session_vol = self._total_vol * np.sqrt(MINUTES_PER_DAY * weight[:, 1, :]) * regime_vol[:, None]
        prices = _bar_prices(
            log_open - last_close + start, log_close - last_close + start, np.abs(noise[2:4]), session_vol
        )
        surprise = np.abs(shock[:, 1, :]) / np.maximum(session_vol, 1e-12)
        minutes = np.where(self._is_crypto[None, :], float(MINUTES_PER_DAY), session_minutes[:, None])
        activity = minutes * regime_vol[:, None] * (0.5 + 0.7 * surprise) * np.exp(0.25 * noise[4] - 0.03)
        volume, trade_count = self._volume_and_trades(self._volume * activity)

        rows, cols = np.nonzero(bars[:, : len(self._watchlist)])
        frame = self._daily_frame(
            [self._watchlist[col] for col in cols],
            grid[rows].tolist(),
            **{name: values[rows, cols] for name, values in prices.items()},
            volume=volume[rows, cols],
            trade_count=trade_count[rows, cols],
        )
        return frame.sort("ts_event", maintain_order=True)

    def _history_regimes(self, days: int) -> npt.NDArray[np.intp]:
        """The daily history's regime each day: the minute model's chain, a day for each hour."""
        rng = self._rng(_Stream.HISTORY_REGIME)
        codes = np.empty(days, dtype=np.intp)
        regime = int(rng.choice([TRENDING_UP, MEAN_REVERTING, TRENDING_DOWN]))
        filled = 0
        while filled < days:
            take = max(1, round(self._regime_duration(rng, regime) / 60))
            codes[filled : filled + take] = regime
            filled += take
            regime = int(rng.choice(len(REGIMES), p=TRANSITIONS[regime]))
        return codes

    def _volume_and_trades(
        self, volume: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Volumes as venues report them (whole shares; crypto to 6 decimals, never zero) and
        the trade counts they make at each asset's mean trade size."""
        volume = np.where(self._is_crypto, np.round(volume, 6), np.round(volume))
        volume = np.maximum(volume, np.where(self._is_crypto, 1e-6, 1.0))
        return volume, np.maximum(np.round(volume / self._trade_size), 1).astype(np.int64)

    # --- schedules: episodes placed by seed and calendar alone ---------------------------------

    def _schedule(self, day: int) -> _Schedule:
        cached = self._schedules.get(day)
        if cached is not None:
            return cached
        schedule = _Schedule()
        on = self._date(day)
        if (day - self._phases.funding) % FUNDING_CADENCE_DAYS == 0:
            self._schedule_funding(day, schedule)
        schedule.events = self._macro_events(day)
        for event in schedule.events:
            self._schedule_macro_reaction(event, schedule)
        session = self._session(day)
        if session is not None and self._on_cadence(on, METALS_CADENCE_SESSIONS, self._phases.metals):
            # The premium's recovery rally runs in the session before the hike's notice,
            # the sell-off in the two after it: the two episodes never blur each other.
            self._schedule_premium_dip(day, schedule)
            self._schedule_margin_hike(day, session[1], schedule)
        if self._on_cadence(on, AI_CADENCE_SESSIONS, self._phases.ai):
            self._schedule_ai_release(day, schedule)
        self._schedules[day] = schedule
        return schedule

    def _schedule_funding(self, day: int, schedule: _Schedule) -> None:
        rng = self._rng(_Stream.FUNDING_EPISODE, day)
        prints = int(rng.integers(1, 3))
        # The cascade must land on the same day as the high prints, so a window of whole
        # days always holds both.
        first_hour = int(rng.choice((0, 8, 16) if prints == 1 else (0, 8)))
        first = day * MINUTES_PER_DAY + first_hour * 60
        last = first + (prints - 1) * 480
        # A cascade that coincided with a macro release would be hidden in its move: it
        # starts 1-5 h after the last high print, outside [event - 90 min, event + 60 min].
        starts = last + np.arange(60, 301)
        clear = np.ones(starts.size, dtype=bool)
        for event in self._macro_events(day):
            clear &= (starts < event.minute - 90) | (starts > event.minute + 60)
        cascade = int(rng.choice(starts[clear] if clear.any() else starts))
        flush_end = cascade + int(rng.integers(20, 46))
        ramp = first - 360
        level = rng.uniform(0.0008, 0.0014)
        build = rng.uniform(0.02, 0.035)
        drop = rng.uniform(0.04, 0.07)
        rebound = drop * rng.uniform(0.45, 0.6)
        oi_build = rng.uniform(0.06, 0.12)
        oi_flush = rng.uniform(0.12, 0.2)
        for k, j in enumerate(self._crypto_columns):
            leverage = self._profiles[j].leverage
            schedule.funding.append(
                _Curve(
                    k,
                    (ramp, first, cascade, flush_end, flush_end + 480),
                    (0.0, level * leverage, level * leverage, -0.00025, 0.0),
                )
            )
            schedule.open_interest.append(
                _Curve(
                    k,
                    (ramp - 360, cascade, flush_end, flush_end + MINUTES_PER_DAY),
                    (0.0, oi_build, oi_build - oi_flush, 0.0),
                )
            )
            schedule.move(j, [(ramp - 360, cascade)], build * leverage)
            schedule.move(j, [(cascade, flush_end)], -drop * leverage)
            schedule.move(j, [(flush_end, flush_end + 240)], rebound * leverage)
            schedule.bump(j, [(cascade, flush_end)], 2.0)
            schedule.bump(j, [(flush_end, flush_end + 120)], 1.5)

    def _macro_events(self, day: int) -> list[_MacroEvent]:
        on = self._date(day)
        rng = self._rng(_Stream.MACRO, day)
        kinds: list[tuple[str, bool]] = []
        if on == self._nfp_day(on.year, on.month):
            kinds.append(("NFP", False))
        if on == self._cpi_day(on.year, on.month):
            kinds.append(("CPI", False))
        if on == self._fomc_day(on.year, on.month):
            kinds.append(("FOMC", False))
        if not kinds and self._on_cadence(on, MACRO_EXTRA_CADENCE_SESSIONS, self._phases.macro):
            kinds.append((str(rng.choice(MACRO_TYPES)), True))
        reference = (on.replace(day=1) - timedelta(days=1)).strftime("%B %Y")
        events = []
        for kind, extra in kinds:
            title = {
                "NFP": f"Employment Situation for {reference}",
                "CPI": f"Consumer Price Index for {reference}",
                "FOMC": "FOMC Statement",
            }[kind]
            if extra:
                title += " (simulated extra release)"
            surprise = float(rng.choice((-1.0, 1.0)) * rng.uniform(1.0, 1.8))
            events.append(_MacroEvent(kind, self._minute_at(on, MACRO_TIMES[kind]), title, surprise))
        return events

    def _nfp_day(self, year: int, month: int) -> date:
        """The first Friday; when federal offices close that day, the Thursday before (2 July
        2020, 3 July 2025), or a week later when that Thursday is in the month before (8 January
        2021)."""
        first_friday = date(year, month, 1 + (4 - date(year, month, 1).weekday()) % 7)
        if self._federal_working_day(first_friday):
            return first_friday
        thursday = first_friday - timedelta(days=1)
        return thursday if thursday.month == month else first_friday + timedelta(days=7)

    def _cpi_day(self, year: int, month: int) -> date:
        candidates = [date(year, month, d) for d in range(10, 16) if self._federal_working_day(date(year, month, d))]
        return candidates[int(self._rng(_Stream.CALENDAR, year, month, 0).integers(len(candidates)))]

    def _fomc_day(self, year: int, month: int) -> date | None:
        if month not in FOMC_MONTHS:
            return None
        wednesdays = [
            on
            for on in (date(year, month, d) for d in range(15, 29))
            if on.weekday() == 2 and self._federal_working_day(on)
        ]
        return wednesdays[int(self._rng(_Stream.CALENDAR, year, month, 1).integers(len(wednesdays)))]

    def _schedule_macro_reaction(self, event: _MacroEvent, schedule: _Schedule) -> None:
        for j, symbol in enumerate(self._symbols):
            total = event.surprise * self._profiles[j].macro / 100
            if is_crypto(symbol):
                react, close = event.minute, event.minute + MACRO_DRIFT_MINUTES
                before = [(event.minute - 60, event.minute)]
            else:
                react, close = self._sessions_after(event.minute, 1)[0]
                before = self._session_overlap(event.minute - 60, event.minute)
            candle_end = min(react + MACRO_FIRST_CANDLE_MINUTES, close)
            drift_end = min(react + MACRO_DRIFT_MINUTES, close)
            schedule.move(j, [(react, candle_end)], total * MACRO_FIRST_CANDLE_SHARE)
            schedule.move(j, [(candle_end, drift_end)], total * (1 - MACRO_FIRST_CANDLE_SHARE))
            schedule.bump(j, before, 1.3)
            schedule.bump(j, [(react, candle_end)], 2.0)

    def _schedule_margin_hike(self, day: int, close: int, schedule: _Schedule) -> None:
        rng = self._rng(_Stream.MARGIN, day)
        # CME posts advisories after the session's close; the sell-off comes in the next two sessions.
        minute = close + int(rng.integers(*HIKE_AFTER_CLOSE_MINUTES))
        gc_pct = rng.uniform(0.08, 0.2)
        schedule.hike = _Hike(minute, gc_pct, gc_pct * rng.uniform(1.0, 1.4))
        selloff = rng.uniform(0.03, 0.05)
        sessions = self._sessions_after(minute, 2)
        for symbol, scale in METALS_BETA.items():
            if symbol in self._column:
                schedule.move(self._column[symbol], sessions, -selloff * scale)
                schedule.bump(self._column[symbol], sessions, 1.3, own=True)

    def _schedule_ai_release(self, day: int, schedule: _Schedule) -> None:
        rng = self._rng(_Stream.AI_RELEASE, day)
        repo = int(rng.integers(len(LAB_REPOS)))
        # Labs publish in US working hours.
        minute = day * MINUTES_PER_DAY + int(rng.integers(14 * 60, 21 * 60))
        lab = LAB_REPOS[repo]
        schedule.release = _MajorRelease(
            repo, minute, bool(rng.random() < 0.2), int(lab.stars * rng.uniform(0.02, 0.05))
        )
        sessions = self._sessions_after(minute, AI_RECOVERY_SESSIONS)
        shock, recovery = sessions[:AI_SHOCK_SESSIONS], sessions[AI_SHOCK_SESSIONS:]
        impaired_drop = rng.uniform(0.10, 0.16)
        dip = rng.uniform(0.05, 0.08)
        if AI_IMPAIRED in self._column:
            column = self._column[AI_IMPAIRED]
            schedule.move(column, shock, -impaired_drop)
            schedule.move(column, recovery, impaired_drop * AI_IMPAIRED_RECOVERY)
            schedule.bump(column, shock, 1.3, own=True)
        for symbol, (scale, regained) in AI_SHOCK.items():
            if symbol in self._column:
                schedule.move(self._column[symbol], shock, -dip * scale)
                schedule.move(self._column[symbol], recovery, dip * scale * regained)
                schedule.bump(self._column[symbol], shock, 1.3, own=True)
        count = int(rng.integers(6, 11))
        delays = np.sort(rng.integers(5, 360, size=count))
        # The lead story is always about the impaired name; the rest come in seeded order.
        templates = [0, *(1 + rng.permutation(len(AI_HEADLINES) - 1))]
        for k in range(count):
            template, tickers = AI_HEADLINES[int(templates[k % len(templates)])]
            schedule.headlines.append(
                _Headline(
                    minute=minute + int(delays[k]),
                    item_id=f"sim-ai-{day}-{k}",
                    title=template.format(lab=lab.display),
                    tickers=tickers,
                    labs=(lab.lab,),
                )
            )

    def _schedule_premium_dip(self, day: int, schedule: _Schedule) -> None:
        # Timed around the fixings so that they show it: the AM fixing sees the usual
        # premium, the PM fixing the trough, the next day's fixings the recovery.
        rng = self._rng(_Stream.PREMIUM_EPISODE, day)
        on = self._date(day)
        (_, am), (_, pm) = PREMIUM_FIXINGS
        start = self._minute_at(on, am, SHANGHAI) + int(rng.integers(15, 46))
        trough = self._minute_at(on, pm, SHANGHAI)
        end = trough + int(rng.integers(22 * 60, 30 * 60 + 1))
        schedule.premium.append(_Curve(0, (start, trough, end), (0.0, -rng.uniform(1.5, 2.5), 0.0)))
        rally = rng.uniform(0.03, 0.05)
        recovery = self._session_overlap(trough, end)
        for symbol, beta in METALS_BETA.items():
            if symbol in self._column:
                schedule.move(self._column[symbol], recovery, rally * beta)

    def _active_schedules(self, day: int) -> list[tuple[int, _Schedule]]:
        return [(k, self._schedule(k)) for k in range(max(0, day - LOOKBACK_DAYS), day + 1)]

    # --- one simulated day ---------------------------------------------------------------------

    def _simulate(self, day: int) -> tuple[_DayOutput, _DayState]:
        state = self._states[day]
        g0 = day * MINUTES_PER_DAY
        minutes = g0 + np.arange(MINUTES_PER_DAY)
        ts = self._origin_us + minutes * MICROS_PER_MINUTE
        codes, regime, regime_left = self._regime_chain(day, state)
        schedules = self._active_schedules(day)

        path = self._prices(day, state, codes, schedules)
        tables: dict[str, pl.DataFrame] = {"bars": self._bars_frame(day, ts, path)}

        derivatives, log_oi = self._derivatives(day, state, codes, schedules, path.log_open)
        tables.update(derivatives)
        metals, premium, usd_cny = self._metal_premiums(day, state, schedules, path.log_open)
        tables["metal_premiums"] = metals
        margin_tables, margins, pending = self._margins(day, state)
        tables.update(margin_tables)
        tables["economic_events"] = self._economic_events(day)
        series, vix, hy_spread = self._market_series(day, state, codes)
        tables["market_series"] = series
        releases, repos = self._releases(day, state, schedules)
        tables.update(releases)
        tables["headlines"] = self._headlines(day, schedules)

        regimes = pl.DataFrame(
            [
                _series(ts, TIMESTAMP).alias("ts_event"),
                pl.Series("regime", np.array(REGIMES)[codes], dtype=pl.String()),
            ]
        )
        next_state = _DayState(
            regime=regime,
            regime_left=regime_left,
            log_price=path.log_close[-1].copy(),
            equity_shock=path.equity_shock,
            log_open_interest=log_oi,
            premium=premium,
            usd_cny=usd_cny,
            vix=vix,
            hy_spread=hy_spread,
            margins=margins,
            pending_margins=pending,
            repos=repos,
        )
        return _DayOutput(tables, regimes), next_state

    def _regime_chain(self, day: int, state: _DayState) -> tuple[npt.NDArray[np.intp], int, int]:
        rng = self._rng(_Stream.REGIME, day)
        codes = np.empty(MINUTES_PER_DAY, dtype=np.intp)
        regime, left, filled = state.regime, state.regime_left, 0
        while filled < MINUTES_PER_DAY:
            take = min(left, MINUTES_PER_DAY - filled)
            codes[filled : filled + take] = regime
            filled += take
            left -= take
            if left == 0:
                regime = int(rng.choice(len(REGIMES), p=TRANSITIONS[regime]))
                left = self._regime_duration(rng, regime)
        return codes, regime, left

    def _prices(
        self, day: int, state: _DayState, codes: npt.NDArray[np.intp], schedules: list[tuple[int, _Schedule]]
    ) -> _PricePath:
        g0 = day * MINUTES_PER_DAY
        n = len(self._symbols)
        session = self._session(day)
        in_session = np.zeros(MINUTES_PER_DAY, dtype=bool)
        if session is not None:
            in_session[session[0] - g0 : session[1] - g0] = True
        weight = np.where(
            self._is_crypto[None, :], 1.0, np.where(in_session[:, None], ON_SESSION_WEIGHT, OFF_SESSION_WEIGHT)
        )

        episode_rate = np.zeros((MINUTES_PER_DAY, n))
        vol_factor = np.ones((MINUTES_PER_DAY, n))
        own_factor = np.ones((MINUTES_PER_DAY, n))
        for _, schedule in schedules:
            for move in schedule.moves:
                for start, end in move.intervals:
                    low, high = max(start, g0) - g0, min(end, g0 + MINUTES_PER_DAY) - g0
                    if low < high:
                        episode_rate[low:high, move.column] += move.rate
            for bump in schedule.vol:
                low, high = max(bump.start, g0) - g0, min(bump.end, g0 + MINUTES_PER_DAY) - g0
                if low < high:
                    (own_factor if bump.own else vol_factor)[low:high, bump.column] *= bump.factor

        regime_vol = REGIME_VOL[codes]
        shocks = self._rng(_Stream.FACTORS, day).standard_normal((MINUTES_PER_DAY, len(FACTORS)))
        factor = shocks * self._factor_vol * (1 + (regime_vol[:, None] - 1) * FACTOR_STRESS)
        equity = factor[:, 0].copy()
        previous = np.concatenate(([state.equity_shock], equity[:-1]))
        factor[:, 0] = equity - REGIME_REVERSION[codes] * previous
        factor_drift = FACTOR_DRIFTS[codes] / MINUTES_PER_DAY
        risk_off = REGIME_RISK_OFF[codes][:, None]
        systematic = np.where(risk_off, factor @ self._loadings_risk_off.T, factor @ self._loadings_calm.T)
        drift = np.where(risk_off, factor_drift @ self._loadings_risk_off.T, factor_drift @ self._loadings_calm.T)

        noise = np.stack(
            [self._rng(_Stream.ASSET, day, key).standard_normal((4, MINUTES_PER_DAY)) for key in self._symbol_keys],
            axis=2,
        )
        idio = noise[0] * self._idio_vol * REGIME_IDIO_VOL[codes][:, None] * own_factor
        scale = vol_factor * np.sqrt(weight)
        shock = (systematic + idio) * scale
        returns = shock + (drift + self._asset_drift) * weight + episode_rate
        log_close = state.log_price + np.cumsum(returns, axis=0)
        log_open = np.vstack([state.log_price, log_close[:-1]])
        sigma = self._total_vol * regime_vol[:, None] * scale
        return _PricePath(
            log_open=log_open,
            log_close=log_close,
            in_session=in_session,
            session=None if session is None else (session[0] - g0, session[1] - g0),
            equity_shock=float(equity[-1]),
            sigma=sigma,
            surprise=np.abs(shock) / sigma,
            range_noise=np.abs(noise[1:3]),
            volume_noise=noise[3],
            activity=vol_factor * own_factor * regime_vol[:, None],
        )

    def _bars_frame(self, day: int, ts: npt.NDArray[np.int64], path: _PricePath) -> pl.DataFrame:
        """The day's minute bars and its daily bars (the NYSE session's, and the UTC day's for
        crypto), in ts_event order."""
        prices = _bar_prices(path.log_open, path.log_close, path.range_noise, path.sigma)
        open_, high, low, close, vwap = (prices[name] for name in ("open", "high", "low", "close", "vwap"))

        minute = np.arange(MINUTES_PER_DAY)
        # Crypto trades most while the US is awake (peak 16:00 UTC); equities trade most
        # just after the open and just before the close (13:00 New York on a half day).
        crypto_profile = 1 + 0.3 * np.sin(2 * np.pi * (minute - 600) / MINUTES_PER_DAY)
        equity_profile = np.ones(MINUTES_PER_DAY)
        if path.session is not None:
            last = path.session[1] - path.session[0] - 1
            into = np.clip(minute - path.session[0], 0, last)
            equity_profile = 1 + 1.5 * np.exp(-into / 25) + np.exp(-(last - into) / 25)
        profile = np.where(self._is_crypto[None, :], crypto_profile[:, None], equity_profile[:, None])
        volume = (
            self._volume
            * profile
            * path.activity
            * (0.5 + 0.7 * path.surprise)
            * np.exp(0.25 * path.volume_noise - 0.03)
        )
        volume, trade_count = self._volume_and_trades(volume)

        emitted = len(self._watchlist)
        active = (self._is_crypto[None, :] | path.in_session[:, None])[:, :emitted]
        rows, cols = np.nonzero(active)
        bar_ts = ts[rows]
        minutes = _frame(
            "bars",
            len(rows),
            symbol=pl.Series(self._watchlist, dtype=pl.String()).gather(cols),
            timeframe=Timeframe.MIN_1.value,
            ts_event=bar_ts,
            open=open_[rows, cols],
            high=high[rows, cols],
            low=low[rows, cols],
            close=close[rows, cols],
            volume=volume[rows, cols],
            trade_count=trade_count[rows, cols],
            vwap=vwap[rows, cols],
            source=SOURCE,
            ts_ingested=bar_ts + LATENCY_US["bars"],
        )
        # A daily bar aggregates exactly the minute bars of its session (crypto: of its UTC day).
        candidates = ((j, (0, MINUTES_PER_DAY) if self._is_crypto[j] else path.session) for j in range(emitted))
        spans = [(j, span) for j, span in candidates if span is not None]

        def per_bar(values: npt.NDArray[Any], reduce: Callable[[npt.NDArray[Any]], Any]) -> npt.NDArray[Any]:
            return np.array([reduce(values[first:end, j]) for j, (first, end) in spans])

        columns = [j for j, _ in spans]
        firsts = [first for _, (first, _) in spans]
        lasts = [end - 1 for _, (_, end) in spans]
        daily_volume, daily_high, daily_low = per_bar(volume, np.sum), per_bar(high, np.max), per_bar(low, np.min)
        daily = self._daily_frame(
            [self._watchlist[j] for j in columns],
            [self._date(day)] * len(columns),
            open=open_[firsts, columns],
            high=daily_high,
            low=daily_low,
            close=close[lasts, columns],
            volume=daily_volume,
            trade_count=per_bar(trade_count, np.sum),
            vwap=np.clip(per_bar(vwap * volume, np.sum) / daily_volume, daily_low, daily_high),
        )
        return pl.concat([minutes, daily]).sort("ts_event", maintain_order=True)

    def _daily_frame(self, symbols: list[str], days: list[date], **values: Any) -> pl.DataFrame:
        """Daily bars of `symbols` on `days`, stamped and known when Alpaca's would be."""
        stamps = [self._daily_stamp(symbol, on) for symbol, on in zip(symbols, days, strict=True)]
        return _frame(
            "bars",
            len(symbols),
            symbol=pl.Series(symbols, dtype=pl.String()),
            timeframe=Timeframe.DAY_1.value,
            ts_event=stamps,
            source=SOURCE,
            ts_ingested=[self._daily_known(symbol, stamp) for symbol, stamp in zip(symbols, stamps, strict=True)],
            **values,
        )

    def _daily_stamp(self, symbol: str, on: date) -> int:
        """Where Alpaca stamps a daily bar: midnight New York of an equity's session date,
        midnight UTC of a crypto day."""
        zone = UTC if is_crypto(symbol) else US_EASTERN
        return micros(datetime.combine(on, time(0), tzinfo=zone))

    def _daily_known(self, symbol: str, stamp: int) -> int:
        """When a daily bar is published: at its close (the session's, early on a half day)."""
        return micros(self._calendar.bar_close(symbol, Timeframe.DAY_1, from_micros(stamp))) + DAILY_BAR_DELAY_US

    def _derivatives(
        self,
        day: int,
        state: _DayState,
        codes: npt.NDArray[np.intp],
        schedules: list[tuple[int, _Schedule]],
        log_open: npt.NDArray[np.float64],
    ) -> tuple[dict[str, pl.DataFrame], npt.NDArray[np.float64]]:
        g0 = day * MINUTES_PER_DAY
        minutes = g0 + np.arange(MINUTES_PER_DAY)
        k_count = len(self._crypto_columns)
        pressure = np.repeat(REGIME_FUNDING[codes][:, None], k_count, axis=1)
        oi_overlay = np.zeros((MINUTES_PER_DAY, k_count))
        for _, schedule in schedules:
            for curve in schedule.funding:
                pressure[:, curve.column] += np.interp(minutes, curve.knots, curve.values, left=0.0, right=0.0)
            for curve in schedule.open_interest:
                oi_overlay[:, curve.column] += np.interp(minutes, curve.knots, curve.values, left=0.0, right=0.0)

        rng = self._rng(_Stream.DERIVATIVES, day)
        oi_steps = rng.normal(0.0, 0.0004, (MINUTES_PER_DAY, k_count)) + REGIME_OI_DRIFT[codes][:, None]
        log_oi_base = state.log_open_interest + np.cumsum(oi_steps, axis=0)
        stamps = np.array(FUNDING_STAMPS)
        funding = pressure[stamps] + rng.normal(0.0, 0.00002, (len(stamps), k_count))
        every = np.arange(0, MINUTES_PER_DAY, PREMIUM_EVERY_MINUTES)
        basis = 0.5 * pressure[every] + rng.normal(0.0, 0.00001, (len(every), k_count))

        spot = np.exp(log_open[:, self._crypto_columns])
        venue_symbols = pl.Series(self._venue_symbols, dtype=pl.String())
        ts = self._origin_us + minutes * MICROS_PER_MINUTE

        stamp_ts = np.repeat(ts[stamps], k_count)
        funding_rows = _frame(
            "funding_rates",
            len(stamp_ts),
            venue=SOURCE,
            symbol=venue_symbols.gather(np.tile(np.arange(k_count), len(stamps))),
            ts_event=stamp_ts,
            funding_rate=funding.ravel(),
            mark_price=(spot[stamps] * (1 + basis[stamps // PREMIUM_EVERY_MINUTES])).ravel(),
            ts_ingested=stamp_ts + LATENCY_US["funding_rates"],
        )
        every_ts = np.repeat(ts[every], k_count)
        interval = every // 480
        next_funding = self._origin_us + (g0 + (interval + 1) * 480) * MICROS_PER_MINUTE
        mark = spot[every] * (1 + basis)
        premium_rows = _frame(
            "premium_index",
            len(every_ts),
            venue=SOURCE,
            symbol=venue_symbols.gather(np.tile(np.arange(k_count), len(every))),
            ts_event=every_ts,
            mark_price=mark.ravel(),
            index_price=spot[every].ravel(),
            estimated_settle_price=mark.ravel(),
            last_funding_rate=funding[interval].ravel(),
            next_funding_time=np.repeat(next_funding, k_count),
            interest_rate=0.0001,
            ts_ingested=every_ts + LATENCY_US["premium_index"],
        )
        open_interest = np.exp(log_oi_base + oi_overlay)[every]
        oi_rows = _frame(
            "open_interest",
            len(every_ts),
            venue=SOURCE,
            symbol=venue_symbols.gather(np.tile(np.arange(k_count), len(every))),
            period="5m",
            ts_event=every_ts,
            open_interest=open_interest.ravel(),
            open_interest_value=(open_interest * spot[every]).ravel(),
            ts_ingested=every_ts + LATENCY_US["open_interest"],
        )
        tables = {"funding_rates": funding_rows, "premium_index": premium_rows, "open_interest": oi_rows}
        return tables, log_oi_base[-1].copy()

    def _metal_premiums(
        self, day: int, state: _DayState, schedules: list[tuple[int, _Schedule]], log_open: npt.NDArray[np.float64]
    ) -> tuple[pl.DataFrame, float, float]:
        on = self._date(day)
        rng = self._rng(_Stream.FIXINGS, day)
        usd_cny = state.usd_cny * float(np.exp(rng.normal(0.0, 0.001)))
        premium = state.premium
        rows: dict[str, list[Any]] = {name: [] for name in TABLE_SCHEMAS["metal_premiums"]}
        # The Shanghai Gold Exchange fixes on weekdays; China's holidays are not modelled.
        if on.weekday() < 5:
            gold = self._column[GOLD_SYMBOL]
            for session, at in PREMIUM_FIXINGS:
                minute = self._minute_at(on, at, SHANGHAI)
                premium += 0.3 * (PREMIUM_MEAN_PCT - premium) + float(rng.normal(0.0, 0.12))
                overlay = sum(
                    float(np.interp(minute, curve.knots, curve.values, left=0.0, right=0.0))
                    for _, schedule in schedules
                    for curve in schedule.premium
                )
                pct = premium + overlay
                reference = float(np.exp(log_open[minute - day * MINUTES_PER_DAY, gold])) * GOLD_OZ_PER_SHARE
                sge_usd = reference * (1 + pct / 100)
                ts = self._origin_us + minute * MICROS_PER_MINUTE
                rows["ts_event"].append(ts)
                rows["session"].append(session)
                rows["sge_cny_per_gram"].append(sge_usd * usd_cny / GRAMS_PER_TROY_OUNCE)
                rows["usd_cny"].append(usd_cny)
                rows["sge_usd_per_oz"].append(sge_usd)
                rows["ref_usd_per_oz"].append(reference)
                rows["premium_usd_per_oz"].append(sge_usd - reference)
                rows["premium_pct"].append(pct)
                rows["source"].append(SOURCE)
                rows["ts_ingested"].append(ts + LATENCY_US["metal_premiums"])
        return _frame("metal_premiums", len(rows["ts_event"]), **rows), premium, usd_cny

    def _margins(
        self, day: int, state: _DayState
    ) -> tuple[dict[str, pl.DataFrame], tuple[float, float], tuple[float, float, int] | None]:
        g0 = day * MINUTES_PER_DAY
        on = self._date(day)
        margins, pending = state.margins, state.pending_margins
        if pending is not None and pending[2] <= g0:
            margins, pending = (pending[0], pending[1]), None
        notices: dict[str, list[Any]] = {name: [] for name in TABLE_SCHEMAS["margin_notices"]}
        hike = self._schedule(day).hike
        latest = margins if pending is None else (pending[0], pending[1])
        change: tuple[int, tuple[float, float]] | None = None
        session = self._session(day)
        if hike is not None:
            change = (hike.minute, (latest[0] * (1 + hike.gc_pct), latest[1] * (1 + hike.si_pct)))
        elif session is not None and latest[0] > MARGIN_CUT_TRIGGER * GC_BASE_MAINTENANCE:
            rng = self._rng(_Stream.MARGIN_CUT, day)
            change = (
                session[1] + CUT_AFTER_CLOSE_MINUTES,
                (GC_BASE_MAINTENANCE * rng.uniform(1.0, 1.1), SI_BASE_MAINTENANCE * rng.uniform(1.0, 1.1)),
            )
        if change is not None:
            minute, targets = change
            new = (_round_margin(targets[0]), _round_margin(targets[1]))
            # Effective the next business day, counted in NYSE sessions (CME closes for the same holidays).
            effective = self._next_session_day(on)
            ts = self._origin_us + minute * MICROS_PER_MINUTE
            effective_text = f"{effective:%B} {effective.day}, {effective:%Y}"
            title = f"Performance Bond Requirements: Metals Margins - Effective {effective_text}"
            for product, old_value, new_value in (("GC", latest[0], new[0]), ("SI", latest[1], new[1])):
                notices["notice_id"].append(f"SIM-Chadv{on:%y}-{on.timetuple().tm_yday:03d}")
                notices["product"].append(product)
                notices["rate_type"].append("OUTRIGHT")
                notices["tier"].append("1")
                notices["title"].append(title)
                notices["notice_date"].append(on)
                notices["effective_date"].append(effective)
                notices["ts_event"].append(ts)
                notices["unit"].append("USD")
                notices["old_initial"].append(old_value * INITIAL_TO_MAINTENANCE)
                notices["new_initial"].append(new_value * INITIAL_TO_MAINTENANCE)
                notices["old_maintenance"].append(old_value)
                notices["new_maintenance"].append(new_value)
                notices["change_pct"].append(100.0 * (new_value - old_value) / old_value)  # percent, as the schema
                notices["source"].append(SOURCE)
                notices["ts_ingested"].append(ts + LATENCY_US["margin_notices"])
            pending = (new[0], new[1], (effective - self._origin.date()).days * MINUTES_PER_DAY)

        snapshot_ts = self._origin_us + (g0 + MARGIN_SNAPSHOT_MINUTE) * MICROS_PER_MINUTE
        front = on.replace(day=1) + timedelta(days=32)
        start_period = f"{front:%Y%m}"
        rates = _frame(
            "margin_rates",
            2,
            exchange="CMX",
            clearing_code=["GC", "SI"],
            name=["COMEX Gold Futures", "COMEX Silver Futures"],
            start_period=start_period,
            end_period=start_period,
            maintenance_rate=list(margins),
            unit="USD",
            currency="USD",
            ts_event=[snapshot_ts, snapshot_ts],
            ts_ingested=[snapshot_ts + LATENCY_US["margin_rates"]] * 2,
        )
        tables = {
            "margin_rates": rates,
            "margin_notices": _frame("margin_notices", len(notices["ts_event"]), **notices),
        }
        return tables, margins, pending

    def _economic_events(self, day: int) -> pl.DataFrame:
        events = self._macro_events(day)
        ts = [self._origin_us + event.minute * MICROS_PER_MINUTE for event in events]
        return _frame(
            "economic_events",
            len(events),
            source=SOURCE,
            event_type=[event.event_type for event in events],
            ts_event=ts,
            title=[event.title for event in events],
            importance=3,
            all_day=False,
            ts_ingested=[t + LATENCY_US["economic_events"] for t in ts],
        )

    def _market_series(
        self, day: int, state: _DayState, codes: npt.NDArray[np.intp]
    ) -> tuple[pl.DataFrame, float, float]:
        session = self._session(day)
        vix, hy_spread = state.vix, state.hy_spread
        if session is None:
            return _frame("market_series", 0, **{name: [] for name in TABLE_SCHEMAS["market_series"]}), vix, hy_spread
        rng = self._rng(_Stream.SERIES, day)
        close = session[1] - day * MINUTES_PER_DAY
        # A day's worst hours, not its average, set where VIX and the spread head: a
        # two-hour crash is enough to move them.
        vix_target = float(np.quantile(REGIME_VIX[codes[:close]], STRESS_QUANTILE))
        hy_target = float(np.quantile(REGIME_HY[codes[:close]], STRESS_QUANTILE))
        vix = max(9.0, vix + 0.6 * (vix_target - vix) + float(rng.normal(0.0, 0.6)))
        hy_spread = max(2.0, hy_spread + 0.35 * (hy_target - hy_spread) + float(rng.normal(0.0, 0.03)))
        ts = self._origin_us + session[1] * MICROS_PER_MINUTE
        frame = _frame(
            "market_series",
            2,
            series=["VIX", "BAMLH0A0HYM2"],
            ts_event=[ts, ts],
            value=[round(vix, 2), round(hy_spread, 2)],
            source=SOURCE,
            ts_ingested=[ts + LATENCY_US["VIX"], ts + LATENCY_US["BAMLH0A0HYM2"]],
        )
        return frame, vix, hy_spread

    def _releases(
        self, day: int, state: _DayState, schedules: list[tuple[int, _Schedule]]
    ) -> tuple[dict[str, pl.DataFrame], tuple[_RepoState, ...]]:
        g0 = day * MINUTES_PER_DAY
        rng = self._rng(_Stream.RELEASES, day)
        planned: list[tuple[int, int, str]] = []
        for i in range(len(LAB_REPOS)):
            if rng.random() < ROUTINE_RELEASE_PROBABILITY:
                planned.append((g0 + int(rng.integers(0, MINUTES_PER_DAY)), i, "patch"))
        major = self._schedule(day).release
        if major is not None:
            planned.append((major.minute, major.repo, "major" if major.major else "minor"))
        planned.sort()

        repos = list(state.repos)
        rows: dict[str, list[Any]] = {name: [] for name in TABLE_SCHEMAS["github_releases"]}
        for minute, i, kind in planned:
            a, b, c = repos[i].version
            version = {"patch": (a, b, c + 1), "minor": (a, b + 1, 0), "major": (a + 1, 0, 0)}[kind]
            repos[i] = replace(repos[i], version=version, releases=repos[i].releases + 1)
            tag = "v{}.{}.{}".format(*version)
            ts = self._origin_us + minute * MICROS_PER_MINUTE
            lab = LAB_REPOS[i]
            rows["repo"].append(lab.repo)
            rows["release_id"].append(RELEASE_ID_BASE + i * 1_000_000 + repos[i].releases)
            rows["tag_name"].append(tag)
            rows["name"].append(tag if kind == "patch" else f"{tag}: {lab.display} model launch")
            rows["draft"].append(False)
            rows["prerelease"].append(False)
            rows["created_at"].append(ts - int(rng.integers(5, 61)) * MICROS_PER_MINUTE)
            rows["ts_event"].append(ts)
            rows["html_url"].append(f"https://github.com/{lab.repo}/releases/tag/{tag}")
            rows["ts_ingested"].append(ts + LATENCY_US["github_releases"])

        stats_rng = self._rng(_Stream.REPO_STATS, day)
        burst = np.zeros(len(LAB_REPOS))
        for release_day, schedule in schedules:
            age = day - release_day
            if schedule.release is not None and age < len(STAR_BURST_SHARES):
                burst[schedule.release.repo] += schedule.release.star_burst * STAR_BURST_SHARES[age]
        snapshot_ts = self._origin_us + (g0 + REPO_SNAPSHOT_MINUTE) * MICROS_PER_MINUTE
        stats: dict[str, list[Any]] = {name: [] for name in TABLE_SCHEMAS["repo_stats"]}
        for i, lab in enumerate(LAB_REPOS):
            gained = int(stats_rng.poisson(repos[i].stars * 0.0006)) + int(np.rint(burst[i]))
            forks = repos[i].forks + int(stats_rng.poisson(gained * 0.1 + 1))
            issues = max(0, repos[i].open_issues + int(stats_rng.integers(-3, 4)))
            repos[i] = replace(repos[i], stars=repos[i].stars + gained, forks=forks, open_issues=issues)
            stats["repo"].append(lab.repo)
            stats["ts_event"].append(snapshot_ts)
            stats["stars"].append(repos[i].stars)
            stats["forks"].append(forks)
            stats["open_issues"].append(issues)
            stats["watchers"].append(round(repos[i].stars * 0.015))
            stats["ts_ingested"].append(snapshot_ts + LATENCY_US["repo_stats"])

        tables = {
            "github_releases": _frame("github_releases", len(rows["repo"]), **rows),
            "repo_stats": _frame("repo_stats", len(stats["repo"]), **stats),
        }
        return tables, tuple(repos)

    def _headlines(self, day: int, schedules: list[tuple[int, _Schedule]]) -> pl.DataFrame:
        g0 = day * MINUTES_PER_DAY
        rng = self._rng(_Stream.HEADLINES, day)
        items: list[_Headline] = []
        for k in range(int(rng.integers(2, 6))):
            template, tickers, about_lab = ROUTINE_HEADLINES[int(rng.integers(len(ROUTINE_HEADLINES)))]
            lab = LAB_REPOS[int(rng.integers(len(LAB_REPOS)))]
            items.append(
                _Headline(
                    minute=g0 + int(rng.integers(0, MINUTES_PER_DAY)),
                    item_id=f"sim-{day}-{k}",
                    title=template.format(lab=lab.display),
                    tickers=tickers,
                    labs=(lab.lab,) if about_lab else (),
                )
            )
        for _, schedule in schedules:
            items.extend(h for h in schedule.headlines if g0 <= h.minute < g0 + MINUTES_PER_DAY)
        items.sort(key=lambda h: (h.minute, h.item_id))
        ts = [self._origin_us + h.minute * MICROS_PER_MINUTE for h in items]
        return _frame(
            "headlines",
            len(items),
            source=SOURCE,
            item_id=[h.item_id for h in items],
            ts_event=ts,
            title=[h.title for h in items],
            link=[f"https://news.sim.invalid/{h.item_id}" for h in items],
            matched_tickers=[list(h.tickers) for h in items],
            matched_labs=[list(h.labs) for h in items],
            ts_ingested=[t + LATENCY_US["headlines"] for t in ts],
        )


# --- helpers -----------------------------------------------------------------------------------


def _profile(symbol: str) -> AssetProfile:
    return ASSETS.get(symbol, DEFAULT_CRYPTO if is_crypto(symbol) else DEFAULT_EQUITY)


def _loading_matrix(profiles: Sequence[AssetProfile], *, risk_off: bool) -> npt.NDArray[np.float64]:
    matrix = np.zeros((len(profiles), len(FACTORS)))
    for j, profile in enumerate(profiles):
        loadings = {**profile.loadings, **(profile.risk_off if risk_off else {})}
        for name, value in loadings.items():
            matrix[j, FACTORS.index(name)] = value
    return matrix


def _bar_prices(
    log_open: npt.NDArray[np.float64],
    log_close: npt.NDArray[np.float64],
    range_noise: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
) -> dict[str, npt.NDArray[np.float64]]:
    """A bar's prices: the high and low stretch beyond open and close by about half the bar's
    volatility (`range_noise`: two arrays of |normal| draws, for the high and the low)."""
    high = np.exp(np.maximum(log_open, log_close) + range_noise[0] * sigma * 0.5)
    low = np.exp(np.minimum(log_open, log_close) - range_noise[1] * sigma * 0.5)
    close = np.exp(log_close)
    return {
        "open": np.exp(log_open),
        "high": high,
        "low": low,
        "close": close,
        "vwap": np.clip((high + low + close) / 3, low, high),
    }


def _round_margin(value: float) -> float:
    return float(round(value / 50) * 50)


def _series(values: Any, dtype: pl.DataType) -> pl.Series:
    if dtype == TIMESTAMP:
        return pl.Series(np.asarray(values, dtype=np.int64)).cast(TIMESTAMP)
    return pl.Series(values=values, dtype=dtype)


def _frame(table: str, height: int, **columns: Any) -> pl.DataFrame:
    """A frame in the table's exact column order and types; scalars fill every row."""
    schema = TABLE_SCHEMAS[table]
    if set(columns) != set(schema):
        raise ValueError(f"{table}: columns {sorted(set(columns) ^ set(schema))} do not match the schema")
    series = []
    for name, dtype in schema.items():
        value = columns[name]
        if isinstance(value, str | int | float | bool):
            series.append(pl.Series(name, [value], dtype=dtype).new_from_index(0, height))
        elif isinstance(value, pl.Series):
            series.append(value.cast(dtype).alias(name))
        else:
            series.append(_series(value, dtype).alias(name))
    return pl.DataFrame(series)


def _cut(days: list[pl.DataFrame], schema: dict[str, pl.DataType], low: datetime, high: datetime) -> pl.DataFrame:
    """The rows of consecutive days' frames with low <= ts_event < high.

    Each day's rows are sorted by ts_event, so only the first and last day need cutting,
    by binary search: a one-minute window out of a cached day costs microseconds.
    """
    if not days:
        return pl.DataFrame(schema=schema)
    parts = list(days)
    parts[0] = parts[0].slice(_position(parts[0], low))
    parts[-1] = parts[-1].slice(0, _position(parts[-1], high))
    return pl.concat(parts)


def _position(frame: pl.DataFrame, moment: datetime) -> int:
    """How many rows have ts_event before `moment`; searched on the raw microseconds,
    which is far cheaper than a polars expression per call."""
    return int(np.searchsorted(frame["ts_event"].to_physical().to_numpy(), micros(moment), side="left"))
