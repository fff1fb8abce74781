"""The engine's state survives a trip through JSON (the warehouse's engine_state) unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from test_pipeline import CALENDAR, CONFIG, MINUTE, PRICES, START, STRATEGIES, always, snapshot_at
from test_positions import position

from core.codec import decode, encode
from core.pipeline import EngineState, RefusedView
from core.positions import ExitReason, PendingExit
from core.types import ContractError, Regime, RegimeReading, Side


def test_a_realistic_state_round_trips_through_json_text() -> None:
    from core.book import Book
    from core.pipeline import run_cycle

    state = EngineState()
    for i in range(4):
        now = START + (i + 10) * MINUTE
        state = run_cycle(
            snapshot_at(now, PRICES),
            Book(100_000.0),
            state,
            CONFIG,
            now,
            strategies=STRATEGIES,
            is_tradable=always,
            calendar=CALENDAR,
        ).state
    assert state.pending_entries and state.risk is not None
    text = json.dumps(encode(state))
    assert decode(EngineState, json.loads(text)) == state


def test_enums_times_and_mappings_keep_their_types() -> None:
    reading = RegimeReading(
        regime=Regime.CRASH, confidence=0.9, probabilities={Regime.CRASH: 0.9, Regime.RECOVERY: 0.1}, evaluated=True
    )
    back = decode(RegimeReading, json.loads(json.dumps(encode(reading))))
    assert back == reading and isinstance(back.regime, Regime)
    assert encode(timedelta(minutes=90)) == 5400.0
    assert encode(datetime(2026, 3, 2, tzinfo=UTC)) == "2026-03-02T00:00:00+00:00"


def test_a_value_of_the_wrong_shape_is_an_error() -> None:
    with pytest.raises((ContractError, TypeError, ValueError)):
        decode(RegimeReading, {"regime": "NOT_A_REGIME", "confidence": 1.0})


def test_positions_with_their_fees_and_pending_exit_round_trip_and_older_states_still_decode() -> None:
    exiting = PendingExit(ExitReason.TIME, 101.0, datetime(2026, 3, 2, 20, 45, tzinfo=UTC), "hy-exit")
    state = EngineState(positions=(replace(position(), entry_fees=0.3, pending_exit=exiting),))
    assert decode(EngineState, json.loads(json.dumps(encode(state)))) == state
    stored = encode(state)
    for field in ("entry_fees", "pending_exit"):
        del stored["positions"][0][field]  # as runs recorded before the fields existed stored them
    [older] = decode(EngineState, json.loads(json.dumps(stored))).positions
    assert (older.entry_fees, older.pending_exit) == (0.0, None)


def test_refused_views_round_trip_and_a_state_stored_before_them_decodes_without_any() -> None:
    view = RefusedView("precious_metals", "GLD", Side.SELL, "not_shortable", datetime(2026, 3, 2, 20, tzinfo=UTC))
    state = EngineState(refused_views=(view,))
    assert decode(EngineState, json.loads(json.dumps(encode(state)))) == state
    stored = encode(state)
    del stored["refused_views"]
    assert decode(EngineState, stored).refused_views == ()
