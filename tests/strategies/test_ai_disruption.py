"""AiDisruptionShock on constructed episodes: a lab release at RELEASE_AT (a Tuesday, in session)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

import polars as pl
import pytest
from builders_ai_cross import (
    LAB_REPO,
    RELEASE_AT,
    SESSION_2,
    SESSION_4,
    SESSION_12,
    ai_episode,
    at,
    bars,
    context,
    headlines,
    releases,
    repo_stats,
    session_times,
    snapshot,
)

from core.config import AiDisruptionParams
from core.snapshot import MarketSnapshot
from core.types import Reason, ReasonCode, Regime, Side
from strategies.ai_disruption import (
    AiDisruptionShock,
    Release,
    is_significant_tag,
    lab_of,
    last_release,
    narrative_velocity,
    sessions_since,
)
from strategies.base import StrategyOutput

STRATEGY = AiDisruptionShock()
IN_SHORT = at(SESSION_2, time(18, 1))
IN_DIP = at(SESSION_4, time(18, 1))


@pytest.fixture(scope="module")
def episode() -> dict[str, pl.DataFrame]:
    return ai_episode()


def run(
    tables: dict[str, pl.DataFrame],
    now: datetime,
    regime: Regime = Regime.HIGH_VOL,
    entered: frozenset[tuple[str, Side]] = frozenset(),
    params: AiDisruptionParams | None = None,
) -> StrategyOutput:
    return STRATEGY.evaluate(context(snapshot(now, tables), "ai_disruption", regime, entered, params))


def confidence_of(output: StrategyOutput, symbol: str) -> float:
    (signal,) = [s for s in output.signals if s.symbol == symbol]
    return signal.confidence


def test_sells_the_impaired_name_in_the_first_two_sessions(episode: dict[str, pl.DataFrame]) -> None:
    output = run(episode, IN_SHORT)
    assert output.abstention is None
    (proposal,) = output.proposals
    assert (proposal.symbol, proposal.side) == ("LZ", Side.SELL)
    assert proposal.reward_risk >= 1.5
    assert proposal.stop > proposal.entry > proposal.target
    lz = next(s for s in output.signals if s.symbol == "LZ")
    assert lz.score < 0 and lz.signal_id in proposal.signal_ids
    assert "session 2" in proposal.reason


def test_buys_quality_names_on_the_dip_targeting_the_pre_release_close(episode: dict[str, pl.DataFrame]) -> None:
    output = run(episode, IN_DIP)
    assert {(p.symbol, p.side) for p in output.proposals} == {("CRM", Side.BUY), ("SHOP", Side.BUY), ("ADBE", Side.BUY)}
    for proposal in output.proposals:
        before = episode["bars"].filter((pl.col("symbol") == proposal.symbol) & (pl.col("ts_event") < RELEASE_AT))
        assert proposal.target == pytest.approx(before.get_column("close")[-1])
        assert proposal.entry < proposal.target * (1 - 0.03)
        assert proposal.reward_risk >= 1.5
    assert all(s.score > 0 for s in output.signals)


def test_nothing_before_the_release_or_after_the_dip_window(episode: dict[str, pl.DataFrame]) -> None:
    assert run(episode, RELEASE_AT - timedelta(minutes=59)) == StrategyOutput()
    assert run(episode, at(SESSION_12, time(18, 1))) == StrategyOutput()


def test_louder_narrative_means_higher_confidence() -> None:
    loud = run(ai_episode(headline_burst=10, star_burst=900), IN_SHORT)
    quiet = run(ai_episode(headline_burst=0, star_burst=0), IN_SHORT)
    assert confidence_of(loud, "LZ") > confidence_of(quiet, "LZ") + 0.1
    assert loud.proposals[0].confidence > quiet.proposals[0].confidence


def test_converging_macro_weakness_raises_confidence() -> None:
    weak = run(ai_episode(macro_drop=0.04), IN_SHORT)
    strong = run(ai_episode(macro_drop=-0.04), IN_SHORT)
    assert confidence_of(weak, "LZ") > confidence_of(strong, "LZ")
    assert "macro weakness 1.00" in weak.proposals[0].reason


def test_velocity_components_rise_with_the_burst() -> None:
    params = AiDisruptionParams()
    release = Release(LAB_REPO, "openai", "v2.9.0", RELEASE_AT)

    def velocity(burst: int, stars: int) -> tuple[float, float, float | None]:
        known = snapshot(IN_SHORT, ai_episode(headline_burst=burst, star_burst=stars))
        measured = narrative_velocity(known, release, IN_SHORT, params, ["LZ"])
        assert 0.0 <= measured.score < 1.0
        return measured.headlines_z, measured.releases_z, measured.stars_z

    loud, quiet = velocity(10, 900), velocity(0, 0)
    assert loud[0] > 3 > quiet[0]
    # The release itself, against a baseline of patch releases: less than one surprise.
    assert 0 < loud[1] == quiet[1] < 1
    assert loud[2] is not None and quiet[2] is not None and loud[2] > 3 > quiet[2]


def test_velocity_expects_the_baseline_rate_of_the_history_the_snapshot_holds() -> None:
    # Ten days of history, one headline a day, then two in the release's first day: lambda is
    # 10 x (1 day / 10 days) = 1, not 10 x (1 day / 30 days), and z = (2 - 1) / sqrt(1) = 1.
    now = RELEASE_AT + timedelta(days=1)
    news = headlines(
        [(RELEASE_AT - timedelta(days=k), ["openai"], []) for k in range(1, 11)]
        + [(RELEASE_AT + timedelta(hours=h), ["openai"], []) for h in (1, 2)]
    )
    tables = {
        "github_releases": releases([(LAB_REPO, "v2.9.0", RELEASE_AT)]),
        "headlines": news,
        "repo_stats": repo_stats([]),
    }
    measured = narrative_velocity(
        MarketSnapshot(now, tables),
        Release(LAB_REPO, "openai", "v2.9.0", RELEASE_AT),
        now,
        AiDisruptionParams(),
        ["LZ"],
    )
    assert measured.headlines_z == pytest.approx(1.0)
    assert measured.releases_z == pytest.approx(1.0)  # one release after a silent (empty) baseline
    assert measured.stars_z is None
    assert measured.score == pytest.approx(math.tanh(1 / 3))


def test_silent_when_only_patch_releases_happen() -> None:
    calm = ai_episode(release_tag="v2.8.99", impaired_drop=0.0, quality_dip=0.0, gauge_dip=0.0, headline_burst=0)
    assert run(calm, IN_SHORT) == StrategyOutput()
    assert run(calm, IN_DIP) == StrategyOutput()


def test_outside_its_regimes_it_signals_but_does_not_propose(episode: dict[str, pl.DataFrame]) -> None:
    output = run(episode, IN_SHORT, regime=Regime.TRENDING_UP)
    assert output.signals and not output.proposals


def test_no_proposal_without_the_sector_gauge_confirming() -> None:
    output = run(ai_episode(gauge_dip=-0.03), IN_SHORT)
    assert output.signals and not output.proposals


def test_no_proposal_while_the_market_is_closed(episode: dict[str, pl.DataFrame]) -> None:
    output = run(episode, at(SESSION_2, time(23, 1)))
    assert output.signals and not output.proposals


def test_does_not_enter_a_view_it_has_already_entered(episode: dict[str, pl.DataFrame]) -> None:
    assert not run(episode, IN_SHORT, entered=frozenset({("LZ", Side.SELL)})).proposals
    assert {p.symbol for p in run(episode, IN_SHORT, entered=frozenset({("LZ", Side.BUY)})).proposals} == {"LZ"}
    dip = run(episode, IN_DIP, entered=frozenset({("CRM", Side.BUY)}))
    assert {p.symbol for p in dip.proposals} == {"SHOP", "ADBE"}


def test_abstains_on_missing_or_stale_inputs(episode: dict[str, pl.DataFrame]) -> None:
    without_stars = {k: v for k, v in episode.items() if k != "repo_stats"}
    assert run(without_stars, IN_SHORT).abstention == Reason(ReasonCode.INPUT_MISSING, "repo_stats")
    old_news = {**episode, "headlines": episode["headlines"].filter(pl.col("ts_event") < IN_SHORT - timedelta(days=5))}
    reason = run(old_news, IN_SHORT).abstention
    assert reason is not None and reason.code is ReasonCode.INPUT_STALE and reason.detail.startswith("headlines:")
    no_gauge = {**episode, "bars": episode["bars"].filter(pl.col("symbol") != "IGV")}
    assert run(no_gauge, IN_SHORT).abstention == Reason(ReasonCode.SYMBOL_MISSING, "IGV (the sector gauge) has no bars")


def test_abstains_when_bars_do_not_reach_back_before_the_release(episode: dict[str, pl.DataFrame]) -> None:
    recent = {**episode, "bars": episode["bars"].filter(pl.col("ts_event") >= RELEASE_AT)}
    reason = run(recent, IN_SHORT).abstention
    assert reason is not None and reason.code is ReasonCode.HISTORY_SHORT
    assert "before the openai/openai-python v2.9.0 release" in reason.detail


def test_significant_releases_are_lab_minor_or_major_versions() -> None:
    assert is_significant_tag("v2.9.0") and is_significant_tag("3.0") and is_significant_tag("v1.0.0")
    assert (
        not is_significant_tag("v2.8.1") and not is_significant_tag("nightly") and not is_significant_tag("v2.9.0-rc1")
    )
    owners = AiDisruptionParams().lab_owners
    assert lab_of("anthropics/anthropic-sdk-python", owners) == "anthropic"
    assert lab_of("openai/openai-python", owners) == "openai"
    params = AiDisruptionParams()
    frame = releases(
        [
            ("anthropics/anthropic-sdk-python", "v0.76.0", RELEASE_AT - timedelta(days=2)),
            ("someone/else", "v9.0.0", RELEASE_AT - timedelta(days=1)),
            ("openai/openai-python", "v2.9.1", RELEASE_AT),
        ]
    )
    later = RELEASE_AT + timedelta(days=30)
    known = MarketSnapshot(later, {"github_releases": frame})
    found = last_release(known, params, RELEASE_AT + timedelta(hours=1))
    assert found is not None and (found.lab, found.tag) == ("anthropic", "v0.76.0")
    assert last_release(known, params, later) is None


def test_sessions_count_trading_dates_from_the_release() -> None:
    # Friday and the next Monday: the weekend holds no session.
    friday, monday = datetime(2026, 2, 13, tzinfo=UTC).date(), datetime(2026, 2, 16, tzinfo=UTC).date()
    gauge = bars("IGV", session_times([friday, monday]), [100.0] * 52)
    assert sessions_since(gauge, at(friday, time(16, 0))) == 2
    # Released after Friday's close: Monday is session 1.
    assert sessions_since(gauge, at(friday, time(22, 0))) == 1
    assert sessions_since(gauge, at(monday, time(22, 0))) == 0


def test_deterministic(episode: dict[str, pl.DataFrame]) -> None:
    assert run(episode, IN_DIP) == run(episode, IN_DIP)
