"""The engine's state survives a trip through JSON (the warehouse's engine_state) unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from test_pipeline import CONFIG, MINUTE, PRICES, START, STRATEGIES, always, snapshot_at
from test_positions import position

from core.codec import decode, encode
from core.pipeline import EngineState
from core.types import ContractError, Regime, RegimeReading


def test_a_realistic_state_round_trips_through_json_text() -> None:
    from core.book import Book
    from core.pipeline import run_cycle

    state = EngineState()
    for i in range(4):
        now = START + (i + 10) * MINUTE
        state = run_cycle(
            snapshot_at(now, PRICES), Book(100_000.0), state, CONFIG, now, strategies=STRATEGIES, is_tradable=always
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


def test_a_state_stored_before_positions_carried_entry_fees_still_decodes() -> None:
    state = EngineState(positions=(position(),))
    stored = encode(state)
    del stored["positions"][0]["entry_fees"]  # as runs recorded before the field existed stored it
    assert decode(EngineState, json.loads(json.dumps(stored))).positions[0].entry_fees == 0.0
