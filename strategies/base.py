"""The strategy contract, defined in core.strategy (the pipeline needs it without importing strategies)."""

from core.strategy import ExposureAdvice, Strategy, StrategyContext, StrategyOutput, missing_inputs

__all__ = ["ExposureAdvice", "Strategy", "StrategyContext", "StrategyOutput", "missing_inputs"]
