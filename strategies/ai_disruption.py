"""Strategy 4, the AI-disruption shock: sell the impaired name, then buy quality software on the dip.

When an AI lab ships a model (a minor or major release of one of its GitHub repositories),
software stocks whose business the model threatens reprice in two phases. The structurally
impaired name (LZ) falls over the first sessions and keeps most of the loss; quality names
(CRM, SHOP, ADBE) are sold with the sector, then recover. So, counting US sessions from the
release at R (session 1 is the first session still trading after R):

- sessions `short_days` (1-2): SELL the impaired names, the stop `stop_daily_vols` daily
  volatilities (hourly returns scaled to a day, clamped to [min_stop_pct, max_stop_pct])
  above, the target reward_risk times that below;
- sessions `dip_days` (3-10): BUY each quality name trading more than `dip_threshold` below
  its last close before R, targeting that close (the recovery), the stop the same
  volatility distance below but never further than 1/reward_risk of the distance to the target.

A session is a UTC date on which the sector gauge (IGV) traded: US sessions lie inside one
UTC date, and counting the gauge's own bars needs no exchange calendar. The gauge's fall
since R (>= `gauge_confirm_drawdown`) confirms that the sector, not one stock, is moving:
without it the strategy keeps its signals but proposes nothing. Only the latest significant
release counts: a new shock restarts the clock.

Significant releases: repositories whose owner is (or, through `lab_owners`, maps to) a lab
of `labs`; not drafts or pre-releases; tags of the form vX.Y.0 or vX.Y. Patch releases are
routine and move nothing.

Narrative velocity, measured over the release's own window W = [R, min(now, R + velocity_window)]
against the baseline B = [R - velocity_baseline_days, R) (clipped to the table's oldest row,
so a short history is not mistaken for a quiet one):

    z_k = (n_k - lambda_k) / sqrt(max(lambda_k, 1)),   lambda_k = baseline count_k x |W| / |B|

for k = releases of the lab, and headlines naming the lab (matched_labs) or one of the
strategy's tickers (matched_tickers): a Poisson count's deviation is sqrt(lambda), floored
at 1 so one event after a silent baseline scores 1, not infinity. Stars: per repository of
the lab, the gain from the last snapshot at or before R to the last one inside W, against
lambda = the baseline's stars per day x that span; z is the same expression over the sums
of the lab's measurable repositories (absent when none is measurable). Then

    velocity = mean over the available components of tanh(max(z_k, 0) / velocity_z_scale)  in [0, 1)

Anchoring the window at R, not at now, lets the dip buy a week later still know how loud
the shock was. Macro weakness m in [0, 1] is the share of three confirmations over the last
`macro_lookback_hours`: IGV down, SPY down, HYG `hyg_drawdown` below its high. Confidence:

    confidence = base_confidence + (max_confidence - base_confidence) x velocity x (1 + m) / 2

so narrative velocity scales it, and counts double when it converges with macro weakness.
Signals: impaired names -(1 + velocity) / 2, quality names min(1, dip / (2 x dip_threshold))
while dipped, the gauge half as strong as its constituents' side.

History needed: bars since the close before R (the pre-release levels) and a few days before
it (volatility), release, headline and star rows back to R - velocity_baseline_days.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.calendar import Timeframe
from core.config import AiDisruptionParams
from core.snapshot import MICROSECOND, BarArrays, IntArray, MarketSnapshot, from_micros, micros
from core.types import Reason, ReasonCode, Regime, Side, Signal, TradeProposal
from strategies.base import BarNeeds, StrategyContext, StrategyOutput, missing_inputs
from strategies.common import TimeSeries, bracket, columns, read_only, resample, table_column

NAME = "ai_disruption"
DEFAULTS = AiDisruptionParams()
# A significant release's tag: vX.Y.0 or vX.Y (group 3 is the patch number).
RELEASE_TAG = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")
VOLATILITY_LOOKBACK = timedelta(days=10)
# Below this many hourly returns a volatility estimate is noise: the widest stop is used.
MIN_VOLATILITY_RETURNS = 10
HOUR = timedelta(hours=1)
DAY_MICROS = timedelta(days=1) // MICROSECOND


@dataclass(frozen=True, slots=True)
class Release:
    repo: str
    lab: str
    tag: str
    at: datetime


@dataclass(frozen=True, slots=True)
class NarrativeVelocity:
    releases_z: float
    headlines_z: float
    stars_z: float | None
    z_scale: float

    @property
    def score(self) -> float:
        """Mean of tanh(max(z, 0) / z_scale) over the measured components, in [0, 1)."""
        components = [self.releases_z, self.headlines_z, *([] if self.stars_z is None else [self.stars_z])]
        return float(np.mean([math.tanh(max(z, 0.0) / self.z_scale) for z in components]))


def lab_of(repo: str, owners: Iterable[tuple[str, str]]) -> str:
    owner = repo.split("/", 1)[0]
    return dict(owners).get(owner, owner)


def is_significant_tag(tag: str) -> bool:
    match = RELEASE_TAG.match(tag.strip())
    return match is not None and (match.group(3) is None or int(match.group(3)) == 0)


def last_release(snapshot: MarketSnapshot, params: AiDisruptionParams, now: datetime) -> Release | None:
    """The most recent significant lab release within release_lookback_days before now."""
    newest_first = snapshot.from_table(
        "github_releases",
        ("significant releases", params.labs, params.lab_owners),
        lambda frame: _significant_releases(frame, params.labs, params.lab_owners),
    )
    until, since = micros(now), micros(now - timedelta(days=params.release_lookback_days))
    # Newest first: the first one published by now is the last release, if it is recent enough.
    for published, release in newest_first:
        if published <= until:
            return release if published > since else None
    return None


def _significant_releases(
    releases: pl.DataFrame, labs: tuple[str, ...], owners: tuple[tuple[str, str], ...]
) -> tuple[tuple[int, Release], ...]:
    """Every significant lab release with its publication time, newest first (then by repo and id)."""
    if releases.is_empty():
        return ()
    table = columns(releases, ("repo", "release_id", "tag_name", "draft", "prerelease", "ts_event"))
    ts, repo, release_id, tag = table["ts_event"], table["repo"], table["release_id"], table["tag_name"]
    published = np.flatnonzero(~table["draft"] & ~table["prerelease"])
    found: list[tuple[int, Release]] = []
    for row in sorted(published.tolist(), key=lambda i: (ts[i], repo[i], release_id[i]), reverse=True):
        lab = lab_of(repo[row], owners)
        if lab in labs and is_significant_tag(tag[row]):
            found.append((int(ts[row]), Release(repo=repo[row], lab=lab, tag=tag[row], at=from_micros(int(ts[row])))))
    return tuple(found)


def sessions_since(gauge: pl.DataFrame, at: datetime) -> int:
    """How many sessions (UTC dates with gauge bars) have traded at or after `at`."""
    return _sessions_since(BarArrays.of(gauge), at)


def _sessions_since(bars: BarArrays, at: datetime) -> int:
    dates = bars.ts[bars.count_before(at) :] // DAY_MICROS
    # Bars are oldest first: the dates are counted where they change, without sorting them.
    return int(np.count_nonzero(np.diff(dates))) + 1 if dates.size else 0


def _poisson_z(recent: float, expected: float) -> float:
    return (recent - expected) / math.sqrt(max(expected, 1.0))


def _of_lab(repos: NDArray[Any], lab: str, owners: Iterable[tuple[str, str]]) -> NDArray[np.bool_]:
    """Which of the repositories are the lab's (each distinct name mapped once)."""
    names, inverse = np.unique(repos, return_inverse=True)
    return np.array([lab_of(name, owners) == lab for name in names], dtype=np.bool_)[inverse]


def _oldest(ts: IntArray) -> datetime | None:
    return from_micros(int(ts.min())) if ts.size else None


def _count_z(
    events: IntArray, history_start: datetime | None, start: datetime, end: datetime, baseline: timedelta
) -> float:
    recent = int(((events >= micros(start)) & (events <= micros(end))).sum())
    base_start = start - baseline if history_start is None else max(start - baseline, history_start)
    if base_start >= start:
        return _poisson_z(recent, 0.0)
    base = int(((events >= micros(base_start)) & (events < micros(start))).sum())
    return _poisson_z(recent, base * ((end - start) / (start - base_start)))


def _star_series(repo_stats: pl.DataFrame, lab: str, owners: tuple[tuple[str, str], ...]) -> tuple[TimeSeries, ...]:
    """Each of the lab's repositories' stars, oldest first; repositories by name."""
    stats = columns(repo_stats, ("repo", "ts_event", "stars"))
    series = []
    for repo in sorted(set(stats["repo"][_of_lab(stats["repo"], lab, owners)].tolist())):
        rows = np.flatnonzero(stats["repo"] == repo)
        series.append(TimeSeries.of(stats["ts_event"][rows], stats["stars"][rows]))
    return tuple(series)


def _stars_z(series: Iterable[TimeSeries], release_at: datetime, end: datetime, baseline: timedelta) -> float | None:
    gained = 0.0
    expected = 0.0
    measured = False
    for repo in series:
        known = int(np.searchsorted(repo.ts, micros(end), side="right"))
        ts, stars = repo.ts[:known], repo.values[:known]
        # Rows [0, before) are at or before the release, [first, before) also inside the baseline.
        before = int(np.searchsorted(ts, micros(release_at), side="right"))
        first = int(np.searchsorted(ts, micros(release_at - baseline), side="left"))
        if before == 0 or before == ts.size or before - first < 2:
            continue
        t_first, s_first = int(ts[first]), float(stars[first])
        t_ref, s_ref = int(ts[before - 1]), float(stars[before - 1])
        t_end, s_end = int(ts[-1]), float(stars[-1])
        gained += s_end - s_ref
        # A ratio of whole microseconds, as timedelta / timedelta computes it.
        expected += (s_ref - s_first) * ((t_end - t_ref) / (t_ref - t_first))
        measured = True
    return _poisson_z(gained, expected) if measured else None


def _about(headlines: pl.DataFrame, lab: str, tickers: tuple[str, ...]) -> NDArray[np.bool_]:
    """Which headlines name the lab or one of the tickers."""
    # The list columns stay in polars, in one pass however many headlines the feeds hold: an
    # intersection with the tickers, where a per-element list.eval costs several times more.
    wanted = pl.lit(pl.Series([list(tickers)], dtype=pl.List(pl.String)))
    return (
        headlines.select(
            pl.col("matched_labs").list.contains(lab)
            | (pl.col("matched_tickers").list.set_intersection(wanted).list.len() > 0)
        )
        .to_series()
        .to_numpy()
    )


def narrative_velocity(
    snapshot: MarketSnapshot,
    release: Release,
    now: datetime,
    params: AiDisruptionParams,
    tickers: Iterable[str],
) -> NarrativeVelocity:
    """The release's narrative against its baseline; see the module docstring for the formula.

    Which rows are the lab's or name it, and the lab's star series, depend on one table's rows
    alone: they are derived once per frame of the table (MarketSnapshot.from_table), and only
    the counts in the windows, which move with now, are made every cycle."""
    end = min(now, release.at + timedelta(hours=params.velocity_window_hours))
    baseline = timedelta(days=params.velocity_baseline_days)
    lab, owners = release.lab, params.lab_owners

    published = table_column(snapshot, "github_releases", "ts_event")
    of_lab = snapshot.from_table(
        "github_releases",
        ("of lab", lab, owners),
        lambda frame: read_only(_of_lab(frame.get_column("repo").to_numpy(), lab, owners)),
    )
    known = published <= micros(now)
    releases_z = _count_z(published[known & of_lab], _oldest(published[known]), release.at, end, baseline)

    watched = tuple(tickers)
    about = snapshot.from_table(
        "headlines", ("about", lab, watched), lambda frame: read_only(_about(frame, lab, watched))
    )
    news = table_column(snapshot, "headlines", "ts_event")
    known = news <= micros(now)
    headlines_z = _count_z(news[known & about], _oldest(news[known]), release.at, end, baseline)

    series = snapshot.from_table(
        "repo_stats", ("lab stars", lab, owners), lambda frame: _star_series(frame, lab, owners)
    )
    stars_z = _stars_z(series, release.at, end, baseline)
    return NarrativeVelocity(releases_z, headlines_z, stars_z, params.velocity_z_scale)


def _bars_until(snapshot: MarketSnapshot, symbol: str, now: datetime) -> BarArrays:
    return snapshot.bar_arrays(symbol).until(now)


def _close(bars: BarArrays, *, before: datetime | None = None, at_or_before: datetime | None = None) -> float | None:
    known = bars.size
    if before is not None:
        known = min(known, bars.count_before(before))
    if at_or_before is not None:
        known = min(known, bars.count_until(at_or_before))
    return None if known == 0 else float(bars.close[known - 1])


def macro_weakness(snapshot: MarketSnapshot, now: datetime, params: AiDisruptionParams) -> float:
    """Share of {gauge down, SPY down, HYG below its high by hyg_drawdown} over the lookback."""
    start = now - timedelta(hours=params.macro_lookback_hours)
    confirmations = 0
    for symbol in (params.sector_gauge, "SPY"):
        series = _bars_until(snapshot, symbol, now)
        then, last = _close(series, at_or_before=start), _close(series)
        confirmations += then is not None and last is not None and last < then
    credit = _bars_until(snapshot, "HYG", now)
    closes = credit.close[credit.count_before(start) :]
    if closes.size:
        confirmations += float(closes[-1]) / float(closes.max()) - 1.0 <= -params.hyg_drawdown
    return confirmations / 3


def daily_volatility(bars: BarArrays, now: datetime) -> float | None:
    """Std of hourly log returns over the lookback, scaled by the hourly returns a day holds."""
    hourly = resample(bars.rows(bars.count_until(now - VOLATILITY_LOOKBACK), bars.size), HOUR)
    if hourly.size <= MIN_VOLATILITY_RETURNS:
        return None
    returns = np.diff(np.log(hourly.close))
    days = np.unique(hourly.ts // DAY_MICROS).size
    return float(returns.std(ddof=1) * math.sqrt(returns.size / days))


class AiDisruptionShock:
    name: ClassVar[str] = NAME
    # Configuration may narrow these, not widen them: a proposal's symbol must be listed here.
    symbols: ClassVar[tuple[str, ...]] = (*DEFAULTS.impaired, *DEFAULTS.quality, DEFAULTS.sector_gauge)
    regimes: ClassVar[frozenset[Regime]] = frozenset({Regime.TRENDING_DOWN, Regime.HIGH_VOL, Regime.RECOVERY})
    inputs: ClassVar[Mapping[str, timedelta]] = MappingProxyType(
        {
            "bars": timedelta(minutes=10),
            # Labs release every few weeks and the news flow pauses over weekends: these are
            # stale only when the feed has clearly stopped.
            "github_releases": timedelta(days=30),
            "headlines": timedelta(days=4),
            "repo_stats": timedelta(days=3),
        }
    )
    overrides_regime: ClassVar[bool] = False
    coarsest_timeframe: ClassVar[Timeframe] = Timeframe.MIN_1

    def bar_needs(self, params: AiDisruptionParams) -> BarNeeds:
        # Sessions are counted on the sector gauge's bars: without them nothing can be timed.
        return BarNeeds(
            traded=tuple(symbol for symbol in (*params.impaired, *params.quality) if symbol in self.symbols),
            required=(params.sector_gauge,),
            optional=("SPY", "HYG"),  # macro_weakness's confirmations
        )

    def evaluate(self, context: StrategyContext) -> StrategyOutput:
        reason = missing_inputs(self, context.snapshot)
        if reason is not None:
            return StrategyOutput.abstain(reason)
        params: AiDisruptionParams = context.params
        snapshot, now = context.snapshot, context.now
        gauge = _bars_until(snapshot, params.sector_gauge, now)
        if not gauge.size:
            return StrategyOutput.abstain(
                Reason(ReasonCode.SYMBOL_MISSING, f"{params.sector_gauge} (the sector gauge) has no bars")
            )
        release = last_release(snapshot, params, now)
        if release is None:
            return StrategyOutput()
        session = _sessions_since(gauge, release.at)
        short_phase = params.short_days[0] <= session <= params.short_days[1]
        dip_phase = params.dip_days[0] <= session <= params.dip_days[1]
        if not (short_phase or dip_phase):
            return StrategyOutput()
        gauge_before = _close(gauge, before=release.at)
        gauge_last = _close(gauge)
        if gauge_before is None or gauge_last is None:
            return StrategyOutput.abstain(
                Reason(
                    ReasonCode.HISTORY_SHORT,
                    f"bars do not reach back before the {release.repo} {release.tag} release "
                    f"at {release.at.isoformat()}: no pre-release level",
                )
            )
        gauge_fall = 1.0 - gauge_last / gauge_before
        confirmed = gauge_fall >= params.gauge_confirm_drawdown

        watched = [s for s in (*params.impaired, *params.quality, params.sector_gauge) if s in self.symbols]
        velocity = narrative_velocity(snapshot, release, now, params, watched).score
        macro = macro_weakness(snapshot, now, params)
        confidence = (
            params.base_confidence + (params.max_confidence - params.base_confidence) * velocity * (1.0 + macro) / 2.0
        )
        last_session = params.short_days[1] if short_phase else params.dip_days[1]
        # Through the close of the phase's last session, on the exchange's calendar.
        horizon = snapshot.calendar.equities.close_of_sessions_ahead(now, last_session - session + 1) - now
        phase = "short" if short_phase else "dip"
        source = f"{release.repo}@{release.tag}:{phase}"
        context_note = (
            f"{release.lab} {release.tag} released {release.at.isoformat()}, session {session}; "
            f"velocity {velocity:.2f}, macro weakness {macro:.2f}, "
            f"{params.sector_gauge} {-gauge_fall:+.1%} since"
        )
        may_propose = context.regime.regime in self.regimes and confirmed

        signals: list[Signal] = []
        proposals: list[TradeProposal] = []

        def emit(symbol: str, score: float) -> Signal:
            signal = Signal(NAME, symbol, score, confidence, source, now, horizon / 2)
            signals.append(signal)
            return signal

        if short_phase:
            conviction = (1.0 + velocity) / 2.0
            for symbol in (s for s in params.impaired if s in self.symbols):
                series = _bars_until(snapshot, symbol, now)
                price = _close(series)
                if price is None:
                    continue
                signal = emit(symbol, -conviction)
                if may_propose and self._tradable(series, now, params) and (symbol, Side.SELL) not in context.entered:
                    proposals.append(
                        bracket(
                            strategy=NAME,
                            symbol=symbol,
                            side=Side.SELL,
                            entry=price,
                            risk=price * self._stop_fraction(series, now, params),
                            reward_risk=params.reward_risk,
                            horizon=horizon,
                            confidence=confidence,
                            signal_ids=(signal.signal_id,),
                            now=now,
                            reason=f"AI shock, impaired name: {context_note}",
                        )
                    )
            if params.sector_gauge in self.symbols:
                emit(params.sector_gauge, -conviction / 2.0)
        else:
            scores: list[float] = []
            for symbol in (s for s in params.quality if s in self.symbols):
                series = _bars_until(snapshot, symbol, now)
                before, price = _close(series, before=release.at), _close(series)
                if before is None or price is None or 1.0 - price / before < params.dip_threshold:
                    continue
                dip = 1.0 - price / before
                score = min(1.0, dip / (2.0 * params.dip_threshold))
                scores.append(score)
                signal = emit(symbol, score)
                if may_propose and self._tradable(series, now, params) and (symbol, Side.BUY) not in context.entered:
                    reward = before - price
                    risk = min(price * self._stop_fraction(series, now, params), reward / params.reward_risk)
                    proposals.append(
                        bracket(
                            strategy=NAME,
                            symbol=symbol,
                            side=Side.BUY,
                            entry=price,
                            risk=risk,
                            reward_risk=reward / risk,
                            horizon=horizon,
                            confidence=confidence,
                            signal_ids=(signal.signal_id,),
                            now=now,
                            reason=f"AI shock, quality name {dip:.1%} below its pre-release close: {context_note}",
                        )
                    )
            if scores and confirmed and params.sector_gauge in self.symbols:
                emit(params.sector_gauge, float(np.mean(scores)) / 2.0)
        return StrategyOutput(signals=tuple(signals), proposals=tuple(proposals))

    @staticmethod
    def _tradable(series: BarArrays, now: datetime, params: AiDisruptionParams) -> bool:
        """The last bar is recent: the market is open, so the entry price is a price."""
        return now - from_micros(int(series.ts[-1])) <= timedelta(minutes=params.max_quote_age_minutes)

    @staticmethod
    def _stop_fraction(series: BarArrays, now: datetime, params: AiDisruptionParams) -> float:
        volatility = daily_volatility(series, now)
        if volatility is None:
            return params.max_stop_pct
        return min(max(params.stop_daily_vols * volatility, params.min_stop_pct), params.max_stop_pct)
