"""The strategy contract, defined in core.strategy (the pipeline needs it without importing strategies)."""

from core.strategy import BarNeeds, ExposureAdvice, Strategy, StrategyContext, StrategyOutput, missing_inputs

__all__ = ["BarNeeds", "ExposureAdvice", "Strategy", "StrategyContext", "StrategyOutput", "missing_inputs"]
