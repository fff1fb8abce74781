"""The seam between the warehouse and the decision core: simulated feeds, ingested, decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.book import Book
from core.config import EngineConfig
from core.pipeline import EngineState, run_cycle
from core.regime import RULES_VERSION
from hydra.context import load_context, market_calendar
from hydra.decide import load_snapshot
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
            calendar=market_calendar(),
        )
        state = result.state
    assert result is not None
    # The simulator's daily history gives SPY, VIXY and HYG their sessions from the first minute.
    assert result.regime.model_version == RULES_VERSION
    assert result.regime.reason == "rules on prices and VIX, VIXY, BAMLH0A0HYM2, HYG"
    assert result.observation_only and result.orders == ()
    assert len(result.signals) > 0
