"""The seam between the warehouse and the decision core: simulated feeds, ingested, decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.book import Book
from core.config import EngineConfig
from core.pipeline import REGIME_SYMBOLS, EngineState, regime_history, run_cycle
from hydra.context import load_context
from hydra.decide import load_minute_bars, load_snapshot
from hydra.jobs import ingest_simulated
from strategies import REGISTRY
from warehouse import Warehouse


def test_a_cycle_decides_on_what_the_warehouse_knew(warehouse: Warehouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HYDRA_WAREHOUSE__PATH", str(warehouse.path))
    monkeypatch.setenv("HYDRA_SIM__START", "2026-02-23T00:00:00Z")
    start = datetime(2026, 2, 23, tzinfo=UTC)
    # Ingested well past as_of: the snapshot must hide the later bars and still show the
    # calendar rows published (ingested) before as_of for events after it.
    ingest_simulated(load_context(), start, start + timedelta(days=16))
    as_of = datetime(2026, 3, 3, 16, 0, tzinfo=UTC)  # a Tuesday, mid-session, after six sessions of history
    snapshot = load_snapshot(warehouse, EngineConfig(), as_of)
    bars = snapshot.table("bars")
    assert bars.get_column("ts_ingested").max() <= as_of  # type: ignore[operator]
    assert set(snapshot.bar_symbols()) >= {"SPY", "BTC/USD", "GLD", "TLT"}
    assert snapshot.table("economic_events").get_column("ts_event").max() > as_of  # type: ignore[operator]

    state = EngineState()
    result = None
    for minute in range(3):
        now = as_of + timedelta(minutes=minute)
        result = run_cycle(
            load_snapshot(warehouse, EngineConfig(), now),
            Book(100_000.0),
            state,
            EngineConfig(),
            now,
            strategies=REGISTRY,
            is_tradable=lambda symbol, moment: True,
        )
        state = result.state
    assert result is not None
    assert result.regime.model_version == "rules-v1"  # five sessions of SPY made the features complete
    assert result.observation_only and result.orders == ()
    assert len(result.signals) > 0


def test_a_refit_reads_exactly_the_regime_history_a_full_snapshot_holds(warehouse: Warehouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HYDRA_WAREHOUSE__PATH", str(warehouse.path))
    monkeypatch.setenv("HYDRA_SIM__START", "2026-02-23T00:00:00Z")
    start = datetime(2026, 2, 23, tzinfo=UTC)
    ingest_simulated(load_context(), start, start + timedelta(days=12), feeds=["bars"])
    now = datetime(2026, 3, 5, 15, 7, tzinfo=UTC)  # bars after it are stored, and hidden from both reads
    days = 6.0
    window = EngineConfig().snapshot.model_copy(update={"minute_bars_days": days})
    everything = load_snapshot(warehouse, EngineConfig().model_copy(update={"snapshot": window}), now)
    regime_only = load_minute_bars(warehouse, REGIME_SYMBOLS, now, now - timedelta(days=days))

    assert set(regime_only.bar_symbols()) == set(REGIME_SYMBOLS) < set(everything.bar_symbols())
    for symbol in REGIME_SYMBOLS:
        assert regime_only.bar_arrays(symbol).ts.tolist() == everything.bar_arrays(symbol).ts.tolist()
    bars = int(days * 390)
    learned = regime_history(regime_only, now, bars)
    assert learned.shape[0] > 1_000
    assert learned.tobytes() == regime_history(everything, now, bars).tobytes()
