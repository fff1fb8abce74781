"""Proof that an optimisation of the decision cycle changes no decision: dump, then compare.

    .venv/bin/python -m bench.cycle_equivalence --out /tmp/base.json               # before
    .venv/bin/python -m bench.cycle_equivalence --out /tmp/new.json --against /tmp/base.json

On the simulator's data (the same seed and epoch as bench.cycle), two kinds of records, each
one canonical JSON line (floats by repr, which round-trips exactly, so equal text is equal bits):

- cycle: whole `run_cycle` results over windows of consecutive minutes, state carried, every
  order filled at its decision price so positions open and the exit path runs too, plus the
  cycle's market view (last prices and bars, realised volatility, regime features);
- strategy: every strategy's output on snapshots sampled across the data, in a regime where
  each may propose and in one where none is stressed, flat and holding every symbol, and at
  `now` and a few minutes before it on the same snapshot (so rows after `now` are present and a
  memo keyed without `now` would show); cross_asset also with looser significance bars, at which
  the lead-lag estimation and prediction run on this data.

With --against, the dump must equal the baseline line for line; the first difference is shown.
Not a benchmark: it exposes no `main`, so `python -m bench` does not run it.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from adapters.simulator import MarketSimulator
from bench.cycle import EPOCH, SEED, always_tradable
from core.book import Book
from core.config import EngineConfig
from core.features import latest_features
from core.pipeline import EngineState, _Market, apply_fills, regime_series, run_cycle
from core.snapshot import MarketSnapshot
from core.strategy import StrategyContext
from core.types import Fill, Order, Regime, RegimeReading, Signal, TradeProposal
from hydra.context import market_calendar
from hydra.decide import load_snapshot
from strategies import REGISTRY, Strategy
from warehouse import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

# Tuesday 10:00 New York (bench.cycle's window); an FOMC release's first candle; a weekend
# night (crypto only, equity feeds paused); a Monday open.
WINDOWS = (
    datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
    datetime(2026, 3, 18, 17, 50, tzinfo=UTC),
    datetime(2026, 3, 7, 3, 0, tzinfo=UTC),
    datetime(2026, 3, 9, 13, 25, tzinfo=UTC),
)
SAMPLES_FROM = datetime(2026, 3, 2, tzinfo=UTC)
SAMPLES_UNTIL = datetime(2026, 3, 20, 23, 0, tzinfo=UTC)
DATA_UNTIL = datetime(2026, 3, 21, tzinfo=UTC)
# HIGH_VOL is in every strategy's regimes (all may propose) and stresses cross_asset; TRENDING_UP does not.
REGIMES = (Regime.HIGH_VOL, Regime.TRENDING_UP)
EARLIER = (timedelta(0), timedelta(minutes=7))
# The simulator's week of minute bars never makes a lead-lag significant at the defaults:
# looser bars let the graph's estimation and prediction run too.
PERMISSIVE = {
    "cross_asset": {"significance_z": 1.0, "min_abs_corr": 0.0, "min_observations": 20, "lag_hours": (1.0, 24.0)}
}


def canonical(value: Any) -> Any:
    """A JSON-ready copy of a result: dataclasses by field (plus their derived ids), in a fixed order."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, np.ndarray):
        return [canonical(item) for item in value.tolist()]
    if isinstance(value, date | timedelta):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        record = {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
        if isinstance(value, Signal):
            record["signal_id"] = value.signal_id
        if isinstance(value, TradeProposal):
            record["proposal_id"] = value.proposal_id
        return {"type": type(value).__name__, **record}
    if isinstance(value, Mapping):
        return {str(canonical(key)): canonical(item) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def line(record: dict[str, Any]) -> str:
    return json.dumps(canonical(record), sort_keys=True, separators=(",", ":"))


def market_view(snapshot: MarketSnapshot, config: EngineConfig, now: datetime) -> dict[str, Any]:
    market = _Market.of(snapshot, now)
    series, _ = regime_series(snapshot, market_calendar().equities, now, config.regime)
    return {
        "last_prices": market.last_prices,
        "daily_volatility": market.daily_volatility,
        "regime_features": latest_features(series),
    }


def fills_for(orders: tuple[Order, ...], now: datetime) -> list[Fill]:
    return [
        Fill(f"fill-{order.client_order_id}", order.client_order_id, order.symbol, order.side, order.qty,
             order.decision_price, 0.0, now)
        for order in orders
        if order.qty > 0 and order.decision_price is not None and order.decision_price > 0
    ]  # fmt: skip


def cycle_records(warehouse: Warehouse, config: EngineConfig, start: datetime, cycles: int) -> Iterator[str]:
    state, book = EngineState(), Book(100_000.0)
    for minute in range(cycles):
        now = start + timedelta(minutes=minute)
        snapshot = load_snapshot(warehouse, config, now)
        result = run_cycle(
            snapshot,
            book,
            state,
            config,
            now,
            strategies=REGISTRY,
            is_tradable=always_tradable,
            calendar=market_calendar(),
        )
        yield line({"kind": "cycle", "window": start, "now": now, "result": result})
        yield line({"kind": "market", "now": now, "view": market_view(snapshot, config, now)})
        fills = fills_for(result.orders, now)
        book = book.copy()
        for fill in fills:
            book.apply_fill(fill)
        outcome = apply_fills(result.state, fills, {o.client_order_id: o for o in result.orders}, config, now)
        state = outcome.state


def variants(config: EngineConfig) -> Iterator[tuple[Strategy, str, Any]]:
    for strategy in REGISTRY:
        params = getattr(config.strategies, strategy.name)
        yield strategy, "default", params
        if strategy.name in PERMISSIVE:
            yield strategy, "permissive", params.model_copy(update=PERMISSIVE[strategy.name])


def strategy_records(warehouse: Warehouse, config: EngineConfig, now: datetime) -> Iterator[str]:
    snapshot = load_snapshot(warehouse, config, now)
    everything = {symbol: 1.0 for symbol in config.watchlist}
    for earlier in EARLIER:
        for regime in REGIMES:
            reading = RegimeReading(regime=regime, confidence=0.8, evaluated=True, model_version="equivalence")
            for held in ({}, everything):
                for strategy, variant, params in variants(config):
                    context = StrategyContext(snapshot, reading, now - earlier, params, held)
                    output = strategy.evaluate(context)
                    yield line(
                        {
                            "kind": "strategy",
                            "now": now - earlier,
                            "regime": regime,
                            "holding": bool(held),
                            "strategy": strategy.name,
                            "variant": variant,
                            "output": output,
                        }
                    )


def build_warehouse(path: Path) -> Warehouse:
    if path.exists():
        return Warehouse(path)
    warehouse = Warehouse(path)
    migrate(warehouse)
    upsert(warehouse, MarketSimulator(seed=SEED, epoch=EPOCH).generate(EPOCH, DATA_UNTIL))
    return warehouse


def coverage(lines: list[str]) -> Counter[str]:
    """What the records exercised, so a reader can judge what an identical dump proves."""
    seen: Counter[str] = Counter()
    for text in lines:
        record = json.loads(text)
        seen[record["kind"]] += 1
        if record["kind"] == "cycle":
            result = record["result"]
            seen.update(f"cycle signal {s['strategy']}:{s['source'].rsplit(':')[-1]}" for s in result["signals"])
            seen.update(f"cycle order {o['intent']} {o['strategy']}" for o in result["orders"])
            seen.update(f"cycle decision approved={d['approved']}" for d in result["decisions"])
            seen["cycle aggregated"] += len(result["aggregated"])
        elif record["kind"] == "strategy":
            output = record["output"]
            name = f"{record['strategy']}/{record['variant']}"
            seen.update(f"strategy signal {name}:{s['source'].rsplit(':')[-1]}" for s in output["signals"])
            seen[f"strategy proposal {name}"] += len(output["proposals"])
            seen[f"strategy modifier {name}"] += len(output["modifiers"])
            seen[f"strategy lead-lag modifier {name}"] += sum("corr" in m["reason"] for m in output["modifiers"])
            seen[f"strategy advice {name}"] += len(output["exposure_advice"])
            if output["abstention"] is not None:
                seen[f"strategy abstention {name}"] += 1
    return seen


def check(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cycle_equivalence", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the dump goes (one JSON record a line)")
    parser.add_argument("--against", type=Path, help="a baseline dump the new one must equal")
    parser.add_argument("--cycles", type=int, default=45, help="consecutive cycles per window")
    parser.add_argument("--sample-minutes", type=int, default=97, help="minutes between sampled snapshots")
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=Path("/tmp/hydra-equivalence.duckdb"),
        help="the simulated data, built on first use and reused after: a baseline and its check must share it",
    )
    arguments = parser.parse_args(argv)
    config = EngineConfig()
    warehouse = build_warehouse(arguments.warehouse)
    lines: list[str] = []
    for start in WINDOWS:
        lines.extend(cycle_records(warehouse, config, start, arguments.cycles))
    sampled = SAMPLES_FROM
    while sampled <= SAMPLES_UNTIL:
        lines.extend(strategy_records(warehouse, config, sampled))
        sampled += timedelta(minutes=arguments.sample_minutes)
    arguments.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    print(f"{len(lines)} records, sha256 {digest}")
    for name, count in sorted(coverage(lines).items()):
        print(f"  {count:6d}  {name}")
    if arguments.against is None:
        return 0
    baseline = arguments.against.read_text(encoding="utf-8").splitlines()
    for number, (old, new) in enumerate(zip(baseline, lines, strict=False), start=1):
        if old != new:
            print(f"DIFFERENT at record {number}:\n  baseline {old[:2000]}\n  new      {new[:2000]}")
            return 1
    if len(baseline) != len(lines):
        print(f"DIFFERENT: baseline has {len(baseline)} records, new {len(lines)}")
        return 1
    print(f"IDENTICAL to {arguments.against}: {len(lines)} records")
    return 0


if __name__ == "__main__":
    sys.exit(check())
