"""The contract every registered strategy meets (DESIGN.md convention 3): one test, every strategy."""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from adapters.simulator import MarketSimulator
from core.config import DEFAULT_WATCHLIST, StrategiesConfig
from core.signals import MAX_MULTIPLIER, MIN_MULTIPLIER
from core.snapshot import BarArrays, BarKey, MarketSnapshot, split_bars
from core.types import ReasonCode, Regime, RegimeReading, TradeProposal
from strategies import REGISTRY
from strategies.base import BarNeeds, Strategy, StrategyContext, StrategyOutput
from warehouse.tables import FEED_TABLES

EPOCH = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
# Sessions, nights and a weekday's crypto hours, after the first day's repository stats and
# VIX print so every feed has rows.
TIMES = tuple(
    EPOCH + offset
    for offset in (
        timedelta(days=1, hours=15),
        timedelta(days=1, hours=19, minutes=30),
        timedelta(days=2, hours=3),
        timedelta(days=2, hours=16, minutes=45),
        timedelta(days=3, hours=20, minutes=10),
    )
)
ALLOWED_IMPORT_ROOTS = {"__future__", "core", "strategies", "numpy", "polars"}
# Standard-library modules that reach the clock, the disk, the network or the environment,
# or draw unseeded randomness.
IMPURE_STDLIB = {
    "os",
    "sys",
    "time",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "socket",
    "subprocess",
    "urllib",
    "http",
    "logging",
    "random",
    "secrets",
    "uuid",
    "threading",
    "multiprocessing",
    "asyncio",
}


@dataclass(frozen=True)
class Evaluation:
    context: StrategyContext
    output: StrategyOutput
    again: StrategyOutput


def by_name(strategy: Strategy) -> str:
    return strategy.name


def params_of(strategy: Strategy) -> object:
    return getattr(StrategiesConfig(), strategy.name)


@pytest.fixture(scope="module")
def simulated_tables() -> dict[str, pl.DataFrame]:
    return MarketSimulator(seed=42, epoch=EPOCH).generate(EPOCH, EPOCH + timedelta(days=4))


@pytest.fixture(scope="module")
def snapshots(simulated_tables: dict[str, pl.DataFrame]) -> list[MarketSnapshot]:
    return [
        MarketSnapshot(as_of, {name: t.filter(pl.col("ts_ingested") <= as_of) for name, t in simulated_tables.items()})
        for as_of in TIMES
    ]


@pytest.fixture(scope="module")
def evaluations(snapshots: list[MarketSnapshot]) -> Callable[[Strategy], list[Evaluation]]:
    """Every strategy on every snapshot in every regime, twice, computed once per module."""
    done: dict[str, list[Evaluation]] = {}

    def evaluate(strategy: Strategy) -> list[Evaluation]:
        if strategy.name not in done:
            done[strategy.name] = []
            for snap in snapshots:
                for regime in Regime:
                    context = StrategyContext(snap, RegimeReading(regime, 0.8), snap.as_of, params_of(strategy))
                    done[strategy.name].append(
                        Evaluation(context, strategy.evaluate(context), strategy.evaluate(context))
                    )
        return done[strategy.name]

    return evaluate


def test_the_registry_holds_one_strategy_per_config_section_in_order() -> None:
    assert tuple(strategy.name for strategy in REGISTRY) == tuple(StrategiesConfig.model_fields)


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_declares_what_it_trades_where_and_from_what(strategy: Strategy) -> None:
    assert strategy.symbols and len(set(strategy.symbols)) == len(strategy.symbols)
    assert set(strategy.symbols) <= set(DEFAULT_WATCHLIST)
    assert strategy.regimes and strategy.regimes <= set(Regime)
    assert isinstance(strategy.regimes, frozenset)
    assert strategy.inputs and set(strategy.inputs) <= set(FEED_TABLES)
    assert all(max_age > timedelta(0) for max_age in strategy.inputs.values())
    assert isinstance(strategy.overrides_regime, bool)


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_declares_the_bars_it_reads_under_its_parameters(strategy: Strategy) -> None:
    needs = strategy.bar_needs(params_of(strategy))
    assert isinstance(needs, BarNeeds)
    assert needs.traded and set(needs.traded) <= set(strategy.symbols)
    assert set(needs.symbols) <= set(DEFAULT_WATCHLIST)
    assert all(isinstance(group, tuple) for group in (needs.traded, needs.required, needs.optional))


class LookedUp(dict[BarKey, BarArrays]):
    """A snapshot's bars by (symbol, timeframe) that note every symbol a reader asks for."""

    def __init__(self, arrays: Mapping[BarKey, BarArrays]) -> None:
        super().__init__(arrays)
        self.symbols: set[str] = set()

    def get(self, key: BarKey, default: Any = None) -> Any:
        self.symbols.add(key[0])
        return super().get(key, default)

    def __getitem__(self, key: BarKey) -> BarArrays:
        self.symbols.add(key[0])
        return super().__getitem__(key)


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_reads_only_the_bars_it_declares(
    strategy: Strategy, evaluations: Callable[[Strategy], list[Evaluation]]
) -> None:
    declared = set(strategy.bar_needs(params_of(strategy)).symbols)
    for evaluation in evaluations(strategy):
        full = evaluation.context.snapshot
        split = split_bars(full.tables["bars"])
        looked_up = LookedUp(split.arrays)
        snapshot = MarketSnapshot(full.as_of, full.tables, bar_split=replace(split, arrays=looked_up))
        # The bars feed's freshness looks at every symbol's newest bar, for any strategy: kept apart.
        snapshot.input_age("bars")
        looked_up.symbols.clear()
        assert strategy.evaluate(replace(evaluation.context, snapshot=snapshot)) == evaluation.output
        assert looked_up.symbols <= declared, f"reads undeclared bars of {sorted(looked_up.symbols - declared)}"


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_abstains_on_an_empty_snapshot_naming_a_missing_input(strategy: Strategy) -> None:
    empty = MarketSnapshot(TIMES[0], {})
    output = strategy.evaluate(
        StrategyContext(empty, RegimeReading(Regime.HIGH_VOL, 0.8), TIMES[0], params_of(strategy))
    )
    assert output.abstention is not None and output.abstention.code is ReasonCode.INPUT_MISSING
    assert output.abstention.detail in strategy.inputs
    assert output == StrategyOutput.abstain(output.abstention)


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_outputs_on_a_simulated_market_are_valid(
    strategy: Strategy, evaluations: Callable[[Strategy], list[Evaluation]]
) -> None:
    results = evaluations(strategy)
    assert any(e.output.abstention is None for e in results), "abstains on every snapshot of a full market"
    for evaluation in results:
        output, now = evaluation.output, evaluation.context.now
        if output.abstention is not None:
            assert output == StrategyOutput.abstain(output.abstention)
            continue
        signal_ids = {signal.signal_id for signal in output.signals}
        assert len(signal_ids) == len(output.signals), "two signals share an id"
        for signal in output.signals:
            assert signal.strategy == strategy.name and signal.symbol in DEFAULT_WATCHLIST
            assert signal.ts_event <= now
        for proposal in output.proposals:
            assert isinstance(proposal, TradeProposal)  # its own checks ran: side, stop and target agree
            assert proposal.strategy == strategy.name and proposal.symbol in strategy.symbols
            assert proposal.signal_ids and set(proposal.signal_ids) <= signal_ids
            assert proposal.ts_event <= now
        for modifier in output.modifiers:
            assert modifier.strategy == strategy.name and modifier.symbol in DEFAULT_WATCHLIST
            assert MIN_MULTIPLIER <= modifier.multiplier <= MAX_MULTIPLIER
            assert modifier.ts_event <= now
        for advice in output.exposure_advice:
            assert advice.symbol in DEFAULT_WATCHLIST and advice.until > now


@pytest.mark.parametrize("strategy", [s for s in REGISTRY if not s.overrides_regime], ids=by_name)
def test_proposes_only_in_its_regimes_unless_it_overrides_them(
    strategy: Strategy, evaluations: Callable[[Strategy], list[Evaluation]]
) -> None:
    for evaluation in evaluations(strategy):
        if evaluation.context.regime.regime not in strategy.regimes:
            assert evaluation.output.proposals == ()


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_is_deterministic(strategy: Strategy, evaluations: Callable[[Strategy], list[Evaluation]]) -> None:
    for evaluation in evaluations(strategy):
        assert evaluation.output == evaluation.again


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_never_mutates_the_snapshot(strategy: Strategy, simulated_tables: dict[str, pl.DataFrame]) -> None:
    as_of = TIMES[3]
    tables = {name: t.filter(pl.col("ts_ingested") <= as_of) for name, t in simulated_tables.items()}
    reference = {name: t.clone() for name, t in tables.items()}
    snap = MarketSnapshot(as_of, tables)
    for regime in (Regime.HIGH_VOL, Regime.TRENDING_UP):
        strategy.evaluate(StrategyContext(snap, RegimeReading(regime, 0.8), as_of, params_of(strategy)))
    assert set(snap.tables) == set(reference)
    for name, frame in reference.items():
        assert snap.tables[name].equals(frame, null_equal=True), f"{name} changed"


@pytest.mark.parametrize("strategy", REGISTRY, ids=by_name)
def test_imports_only_core_strategies_numpy_polars_and_pure_stdlib(strategy: Strategy) -> None:
    source = Path(inspect.getfile(type(strategy)))
    roots = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, f"{source.name}: relative import"
            roots.add(node.module.split(".")[0])
    allowed = ALLOWED_IMPORT_ROOTS | (set(sys.stdlib_module_names) - IMPURE_STDLIB)
    assert roots <= allowed, f"{source.name} imports {sorted(roots - allowed)}"
