"""The regime rules on the S&P 500's real history (1990-2022) against labelled episodes.

The episode table is tests/data/real/regime_episodes.csv; the confusion table in docs/regime_validation.md is
`python -m bench.regime_episodes`. The old detector (an HMM naming its states by ranks within
its 45-day fit window) called 2018-02-05 and the December 2018 sell-off MEAN_REVERTING.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from bench.regime_episodes import EpisodeResult, evaluate, sp500_sessions
from core.config import RegimeConfig
from core.features import Feature
from core.regime import REGIMES, STRESS, classify, confirmed
from core.types import Regime


@pytest.fixture(scope="module")
def results() -> list[EpisodeResult]:
    return evaluate()


@pytest.fixture(scope="module")
def regimes_by_day() -> dict[date, Regime]:
    config = RegimeConfig()
    days, features = sp500_sessions()
    codes = confirmed(classify(features, config.thresholds), config.confirm_sessions)
    return {day: REGIMES[code] for day, code in zip(days, codes.tolist(), strict=True) if code >= 0}


def test_every_episode_is_mostly_named_as_labelled(results: list[EpisodeResult]) -> None:
    rates = {result.episode.name: round(result.hit_rate, 2) for result in results}
    assert min(rates.values()) >= 0.65, rates
    total = sum(r.sessions for r in results)
    assert sum(r.hits for r in results) / total >= 0.95


def test_crashes_are_stress_from_their_first_session(regimes_by_day: dict[date, Regime]) -> None:
    for day in (date(2008, 9, 15), date(2011, 8, 4), date(2015, 8, 24), date(2018, 2, 5), date(2020, 3, 9)):
        assert regimes_by_day[day] in STRESS, day


def test_the_old_detectors_mistakes_are_gone(regimes_by_day: dict[date, Regime]) -> None:
    december_2018 = [day for day in regimes_by_day if date(2018, 12, 17) <= day <= date(2018, 12, 24)]
    assert december_2018 and all(regimes_by_day[day] is not Regime.MEAN_REVERTING for day in december_2018)
    assert regimes_by_day[date(2018, 2, 5)] is not Regime.MEAN_REVERTING


def test_calm_years_are_never_stress(results: list[EpisodeResult]) -> None:
    for result in results:
        if result.episode.accepted <= {Regime.TRENDING_UP, Regime.MEAN_REVERTING, Regime.RECOVERY}:
            assert not any(result.counts.get(regime) for regime in STRESS), result.episode.name


def test_the_rules_hold_on_prices_alone() -> None:
    """Most of the history has no VIX: taking it away where it exists changes little."""
    config = RegimeConfig()
    days, features = sp500_sessions()
    without_fear = features.copy()
    without_fear[:, Feature.FEAR_LEVEL] = np.nan
    with_fear = classify(features, config.thresholds)
    alone = classify(without_fear, config.thresholds)
    has_vix = ~np.isnan(features[:, Feature.FEAR_LEVEL])
    assert has_vix.sum() > 1000
    assert np.mean(with_fear[has_vix] == alone[has_vix]) > 0.9
    assert len(days) == features.shape[0]
