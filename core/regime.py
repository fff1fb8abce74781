"""Regime detection: a Gaussian HMM over regime features, its states named by their statistics.

Three pieces, all pure:

- `RegimeModel`: fitted with hmmlearn's `GaussianHMM` on a feature history, then reduced to
  plain arrays. Its hidden states are named by `classify_rules` (below). Inference is a forward
  filter of our own, so a regime at bar t uses bars up to t only: Viterbi or smoothed
  posteriors over a whole history would let a backtest see the future.
- `classify_rules`: thresholds on the same features, for the time before the first fit.
- `RegimeDetector`: the per-cycle state machine: evaluation cadence, hysteresis, readings.

Naming states (and rule-classifying bars) is one ordered decision list over a profile:
the trend t-statistic as it is (it is scale-free), and the other features as robust
z-scores, (x - median) / (IQR / 1.349), against the fit history (or, for the rules, a fixed
reference for minute bars). Stress is the largest of the volatility z, the fear-gauge z and
the credit-drawdown z (sign flipped). Falling means trend <= -TREND_T or return z <= -HIGH_Z,
rising the mirror image. The first rule that holds names the state:

1. CRASH: stress >= HIGH_Z and falling
2. RECOVERY: drawdown z <= -DEEP_Z and rising
3. HIGH_VOL: stress >= HIGH_Z
4. TRENDING_UP: trend >= TREND_T
5. TRENDING_DOWN: trend <= -TREND_T
6. MEAN_REVERTING: otherwise (no trend to speak of)

Each state is named on its own, so the naming is deterministic however alike two states
are (alike states simply get the same name, and their posteriors add up), and a regime the
history never showed gets no state rather than a forced, wrong one. The z-scores make the
names relative to the fit history: its most stressed states are HIGH_VOL or CRASH if they
stand HIGH_Z robust deviations above its median, whatever the absolute level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
from hmmlearn.hmm import GaussianHMM
from numpy.typing import NDArray
from sklearn.cluster import kmeans_plusplus

from core.config import RegimeConfig
from core.features import N_FEATURES, Feature, FloatArray
from core.types import Regime, RegimeReading

REGIMES: tuple[Regime, ...] = tuple(Regime)
"""Canonical order of regimes: columns of probability arrays, values of regime codes."""

NO_REGIME = -1
"""Regime code of a bar whose features are incomplete."""

RULES_VERSION = "rules-v1"
UNKNOWN_VERSION = "none"

HIGH_Z = 1.5
DEEP_Z = 1.0
TREND_T = 0.5

# A transition the fit never saw must not make an observation impossible to explain later.
_TRANSITION_FLOOR = 1e-9
_IQR_TO_SIGMA = 1.349


@dataclass(frozen=True, slots=True)
class FeatureScale:
    """Robust location and scale per feature column."""

    center: FloatArray
    scale: FloatArray

    def __post_init__(self) -> None:
        if self.center.shape != (N_FEATURES,) or self.scale.shape != (N_FEATURES,):
            raise ValueError(f"FeatureScale needs {N_FEATURES} centers and scales")
        if not np.all(np.isfinite(self.center)) or not np.all(self.scale > 0):
            raise ValueError("FeatureScale: centers must be finite and scales positive")

    @classmethod
    def of(cls, rows: FloatArray) -> FeatureScale:
        q25, median, q75 = np.quantile(rows, [0.25, 0.5, 0.75], axis=0)
        scale = (q75 - q25) / _IQR_TO_SIGMA
        # A constant column (an absent gauge is all zeros) carries no information: unit scale keeps its z at 0.
        return cls(center=median, scale=np.where(scale > 0, scale, 1.0))

    def z(self, rows: FloatArray) -> FloatArray:
        return (rows - self.center) / self.scale


# Typical values for minute bars of a broad US equity index with the default FeatureWindows.
# The rules run only until the first fit, which replaces them with the history's own scale.
MINUTE_RULES_SCALE = FeatureScale(
    center=np.array([0.0, 0.0005, 0.0, -0.005, 0.0, -0.002]),
    scale=np.array([0.002, 0.00025, 1.0, 0.005, 0.04, 0.003]),
)


def classify_rules(rows: FloatArray, scale: FeatureScale = MINUTE_RULES_SCALE) -> NDArray[np.int_]:
    """Regime code (index into REGIMES) per feature row by the decision list above; NO_REGIME for incomplete rows.

    With the default scale these are the rules used before the first fit; `RegimeModel.fit`
    names its states by the same rules, with the fit history's own scale.
    """
    z = scale.z(rows)
    trend = rows[:, Feature.TREND]
    stress = np.maximum(np.maximum(z[:, Feature.VOL], z[:, Feature.FEAR]), -z[:, Feature.CREDIT])
    falling = (trend <= -TREND_T) | (z[:, Feature.RET] <= -HIGH_Z)
    rising = (trend >= TREND_T) | (z[:, Feature.RET] >= HIGH_Z)
    stressed = stress >= HIGH_Z
    choices = [
        (stressed & falling, Regime.CRASH),
        ((z[:, Feature.DRAWDOWN] <= -DEEP_Z) & rising, Regime.RECOVERY),
        (stressed, Regime.HIGH_VOL),
        (trend >= TREND_T, Regime.TRENDING_UP),
        (trend <= -TREND_T, Regime.TRENDING_DOWN),
    ]
    codes = np.select(
        [condition for condition, _ in choices],
        [REGIMES.index(regime) for _, regime in choices],
        default=REGIMES.index(Regime.MEAN_REVERTING),
    )
    codes[np.isnan(rows).any(axis=1)] = NO_REGIME
    return codes


@dataclass(frozen=True, slots=True)
class RegimeEstimate:
    """Probabilities of every named regime at one bar, and the model that gave them."""

    probabilities: Mapping[Regime, float]
    model_version: str

    def __post_init__(self) -> None:
        values = [self.probabilities.get(regime, math.nan) for regime in REGIMES]
        if not all(math.isfinite(p) and p >= 0 for p in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
            raise ValueError(f"RegimeEstimate needs a probability for each of {len(REGIMES)} regimes, summing to 1")

    @classmethod
    def from_array(cls, probabilities: FloatArray, model_version: str) -> RegimeEstimate:
        return cls(dict(zip(REGIMES, (float(p) for p in probabilities), strict=True)), model_version)

    @property
    def most_likely(self) -> Regime:
        # max() keeps the first of equals, so ties go to the earlier regime in REGIMES.
        return max(REGIMES, key=lambda regime: self.probabilities[regime])


def rules_estimate(row: FloatArray, scale: FeatureScale = MINUTE_RULES_SCALE) -> RegimeEstimate | None:
    """The rules' regime for one feature row, as a certain estimate; None if the row is incomplete."""
    code = int(classify_rules(row.reshape(1, -1), scale)[0])
    if code == NO_REGIME:
        return None
    return RegimeEstimate.from_array(np.eye(len(REGIMES))[code], RULES_VERSION)


@dataclass(frozen=True, slots=True)
class HmmSpec:
    """How a RegimeModel is fitted and sampled."""

    n_states: int = 6
    # Minute features are fitted and filtered at a 15-bar step: one-minute steps are mostly noise
    # and would make the fit 15 times slower, while 15-minute steps still see a regime turn within
    # the hour. Rows are taken back from the latest bar, so the latest bar is always observed.
    sample_every: int = 15
    n_iter: int = 100
    tol: float = 1e-3
    min_samples: int = 500
    # EM can settle with one state spread over two calm regimes while two states split a crash;
    # several seeded starts, the most likely fit kept, avoid that at a few seconds each.
    restarts: int = 5

    def __post_init__(self) -> None:
        if min(self.n_states, self.sample_every, self.n_iter, self.restarts) < 1 or self.min_samples < self.n_states:
            raise ValueError("HmmSpec: n_states, sample_every, n_iter and restarts >= 1, min_samples >= n_states")

    def sample(self, features: FloatArray) -> FloatArray:
        return features[::-1][:: self.sample_every][::-1]


class InsufficientHistory(ValueError):
    """Too few complete feature rows to fit a model: keep using the rules."""


@dataclass(frozen=True, slots=True)
class RegimeModel:
    """A fitted HMM as plain arrays, with a regime name per hidden state.

    The HMM observes arcsinh of the features' robust z-scores: the arcsinh keeps ordinary
    differences linear but compresses the tails, so rows tens of IQRs out (a crash) do not
    draw several states to themselves while calm regimes are merged into one.
    """

    spec: HmmSpec
    scale: FeatureScale
    means: FloatArray  # (states, features), in observation space
    variances: FloatArray  # (states, features), diagonal covariances in observation space
    transitions: FloatArray  # (states, states), rows sum to 1
    stationary: FloatArray  # (states,), the filter's prior at the first observation
    state_regimes: tuple[Regime, ...]
    fitted_at: datetime

    @property
    def version(self) -> str:
        return f"hmm-{self.fitted_at.isoformat()}"

    @classmethod
    def fit(cls, features: FloatArray, fitted_at: datetime, seed: int, spec: HmmSpec = HmmSpec()) -> RegimeModel:
        """Fit on a feature history (bars in time order); deterministic for a given seed."""
        if fitted_at.tzinfo is None or fitted_at.utcoffset() != timedelta(0):
            raise ValueError("RegimeModel.fit: fitted_at must be UTC-aware")
        sampled = spec.sample(features)
        # Dropping incomplete rows splices the sequence at gaps; a few splices among thousands of
        # transitions do not move the fit.
        rows = sampled[~np.isnan(sampled).any(axis=1)]
        if rows.shape[0] < spec.min_samples:
            raise InsufficientHistory(f"{rows.shape[0]} complete samples, {spec.min_samples} needed to fit")
        scale = FeatureScale.of(rows)
        observations = np.arcsinh(scale.z(rows))
        fits = []
        for restart in range(spec.restarts):
            # Diagonal covariances: absent gauges are constant columns, which would make a full
            # covariance singular, and the features' correlations are not what tells regimes apart.
            candidate = GaussianHMM(
                n_components=spec.n_states,
                covariance_type="diag",
                n_iter=spec.n_iter,
                tol=spec.tol,
                random_state=seed + restart,
                init_params="stc",
                implementation="scaling",
            )
            # k-means++ seeds the means instead of hmmlearn's full k-means (ten Lloyd runs):
            # EM refines the means anyway, and the k-means was most of the fit time.
            candidate.means_ = kmeans_plusplus(observations, spec.n_states, random_state=seed + restart)[0]
            candidate.fit(observations)
            fits.append((float(candidate.score(observations)), -restart, candidate))
        hmm = max(fits, key=lambda fit: fit[:2])[2]
        means = np.asarray(hmm.means_, dtype=np.float64)
        variances = np.asarray(np.diagonal(hmm.covars_, axis1=1, axis2=2), dtype=np.float64)
        transitions = np.asarray(hmm.transmat_, dtype=np.float64) + _TRANSITION_FLOOR
        transitions /= transitions.sum(axis=1, keepdims=True)
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(transitions)) and np.all(variances > 0)):
            raise InsufficientHistory("the HMM fit degenerated (non-finite parameters); keep using the rules")
        # A state's mean mapped back to feature units is its typical profile, which names it.
        codes = classify_rules(np.sinh(means) * scale.scale + scale.center, scale)
        return cls(
            spec=spec,
            scale=scale,
            means=means,
            variances=variances,
            transitions=transitions,
            stationary=_stationary(transitions),
            state_regimes=tuple(REGIMES[int(code)] for code in codes),
            fitted_at=fitted_at,
        )

    def history_probabilities(self, features: FloatArray) -> FloatArray:
        """Filtered regime probabilities per bar, shape (bars, len(REGIMES)); NaN rows where features are incomplete.

        Row t is filtered from bars t, t - k, t - 2k, ... (k = spec.sample_every) back to the
        start of `features`, and from nothing later: it is what `estimate` gives live at bar t.
        """
        n = features.shape[0]
        step = self.spec.sample_every
        lead = -n % step
        likelihoods = np.ones((lead + n, len(self.state_regimes)))
        likelihoods[lead:] = self._likelihoods(features)
        # Bars of the same phase modulo the step form one sequence at the model's cadence;
        # the phases are filtered side by side, one step of the loop per `step` bars.
        by_step = likelihoods.reshape(-1, step, likelihoods.shape[1])
        filtered = np.empty_like(by_step)
        belief = np.broadcast_to(self.stationary, by_step.shape[1:])
        for i in range(by_step.shape[0]):
            prior = belief if i == 0 else belief @ self.transitions
            joint = prior * by_step[i]
            belief = joint / joint.sum(axis=1, keepdims=True)
            filtered[i] = belief
        probabilities = self._to_regimes(filtered.reshape(-1, filtered.shape[2])[lead:])
        probabilities[np.isnan(features).any(axis=1)] = np.nan
        return probabilities

    def classify_history(self, features: FloatArray) -> NDArray[np.int_]:
        """Most probable regime code per bar (index into REGIMES), NO_REGIME where features are incomplete."""
        probabilities = self.history_probabilities(features)
        complete = ~np.isnan(probabilities).any(axis=1)
        codes = np.full(features.shape[0], NO_REGIME)
        codes[complete] = np.argmax(probabilities[complete], axis=1)
        return codes

    def estimate(self, features: FloatArray) -> RegimeEstimate | None:
        """Regime probabilities at the last bar of a recent feature history; None if that bar is incomplete."""
        if features.shape[0] == 0 or np.isnan(features[-1]).any():
            return None
        # The batched filter costs one loop step per `sample_every` bars, as filtering only the
        # last bar's phase would, and makes live and backtest the same computation.
        return RegimeEstimate.from_array(self.history_probabilities(features)[-1], self.version)

    def _likelihoods(self, features: FloatArray) -> FloatArray:
        """Emission likelihoods per row and state, each row scaled to a maximum of 1; incomplete rows are all 1."""
        z = np.arcsinh(self.scale.z(features))
        missing = np.isnan(z).any(axis=1)
        z[missing] = 0.0
        inverse = 1.0 / self.variances
        # The diagonal Gaussian log-density, expanded into matrix products: no (rows, states, features) temporary.
        log_density = -0.5 * (
            (z * z) @ inverse.T
            - 2.0 * z @ (self.means * inverse).T
            + np.sum(self.means * self.means * inverse + np.log(2.0 * np.pi * self.variances), axis=1)
        )
        likelihoods: FloatArray = np.exp(log_density - log_density.max(axis=1, keepdims=True))
        likelihoods[missing] = 1.0
        return likelihoods

    def _to_regimes(self, state_probabilities: FloatArray) -> FloatArray:
        membership = np.zeros((len(self.state_regimes), len(REGIMES)))
        for state, regime in enumerate(self.state_regimes):
            membership[state, REGIMES.index(regime)] = 1.0
        regime_probabilities: FloatArray = state_probabilities @ membership
        return regime_probabilities


def _stationary(transitions: FloatArray) -> FloatArray:
    values, vectors = np.linalg.eig(transitions.T)
    vector: FloatArray = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return vector / float(vector.sum())


def estimate_regime(features: FloatArray, model: RegimeModel | None) -> RegimeEstimate | None:
    """The fitted model's estimate at the last bar, or the rules' before there is a model."""
    if model is None:
        return rules_estimate(features[-1]) if features.shape[0] else None
    return model.estimate(features)


def needs_refit(last_fit_time: datetime | None, now: datetime, refit_every_days: float) -> bool:
    if last_fit_time is None:
        return True
    if now < last_fit_time:
        raise ValueError(f"needs_refit: now {now.isoformat()} precedes the last fit {last_fit_time.isoformat()}")
    return now - last_fit_time >= timedelta(days=refit_every_days)


@dataclass(frozen=True, slots=True)
class DetectorState:
    """What the detector carries between cycles."""

    cycle: int = 0
    reading: RegimeReading | None = None


# Before any estimate exists (features still warming up) the reading says so: confidence 0, version "none".
UNKNOWN_READING = RegimeReading(regime=Regime.MEAN_REVERTING, confidence=0.0, model_version=UNKNOWN_VERSION)


@dataclass(frozen=True, slots=True)
class RegimeDetector:
    """Evaluates every `evaluate_every_cycles` cycles and switches regime only past the hysteresis margin."""

    config: RegimeConfig

    def due(self, state: DetectorState) -> bool:
        """Whether this cycle evaluates: on the cadence, or on every cycle until a first estimate exists."""
        reading = state.reading or UNKNOWN_READING
        return reading.model_version == UNKNOWN_VERSION or state.cycle % self.config.evaluate_every_cycles == 0

    def step(
        self, state: DetectorState, evaluate: Callable[[], RegimeEstimate | None]
    ) -> tuple[DetectorState, RegimeReading]:
        """One cycle. `evaluate` is called only when the cycle is due, so off-cadence cycles cost nothing."""
        previous = state.reading or UNKNOWN_READING
        estimate = evaluate() if self.due(state) else None
        if estimate is None:
            reading = replace(previous, evaluated=False, changed=False)
        else:
            reading = self._read(previous, estimate)
        return DetectorState(cycle=state.cycle + 1, reading=reading), reading

    def _read(self, previous: RegimeReading, estimate: RegimeEstimate) -> RegimeReading:
        probabilities = dict(estimate.probabilities)
        candidate = estimate.most_likely
        regime = previous.regime
        if previous.model_version == UNKNOWN_VERSION or (
            probabilities[candidate] - probabilities[regime] > self.config.hysteresis
        ):
            regime = candidate
        return RegimeReading(
            regime=regime,
            confidence=probabilities[regime],
            probabilities=probabilities,
            evaluated=True,
            changed=previous.model_version == UNKNOWN_VERSION or regime is not previous.regime,
            model_version=estimate.model_version,
        )
