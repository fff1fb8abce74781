"""The strategies, registered explicitly: the engine runs exactly REGISTRY, in this order, and
one contract test (tests/strategies/test_contract.py) checks every entry."""

from __future__ import annotations

from strategies.ai_disruption import AiDisruptionShock
from strategies.base import Strategy
from strategies.cross_asset import CrossAssetGraph
from strategies.liquidation_cascade import LiquidationCascade
from strategies.macro_event import MacroEventScalper
from strategies.precious_metals import PreciousMetalsFlow

REGISTRY: tuple[Strategy, ...] = (
    LiquidationCascade(),
    MacroEventScalper(),
    PreciousMetalsFlow(),
    AiDisruptionShock(),
    CrossAssetGraph(),
)

__all__ = ["REGISTRY", "Strategy"]
