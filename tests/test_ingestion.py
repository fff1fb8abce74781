"""A source read in chunks (a user's file) is ingested chunk by chunk, as one run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from adapters.feed import PAYLOAD_LIMIT, FeedBatch
from adapters.tables import TABLE_SCHEMAS
from hydra.context import load_context
from hydra.ingestion import ingest_chunks
from warehouse.migrate import migrate

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def bars(symbol: str, minutes: list[int]) -> FeedBatch:
    times = [START + timedelta(minutes=m) for m in minutes]
    frame = pl.DataFrame(
        {
            "symbol": symbol,
            "timeframe": "1Min",
            "ts_event": times,
            **dict.fromkeys(("open", "high", "low", "close"), 100.0),
            "volume": 1.0,
            "source": "file:test.csv",
            "ts_ingested": [time + timedelta(minutes=1) for time in times],
        }
    )
    schema = pl.Schema(TABLE_SCHEMAS["bars"])
    return FeedBatch(
        "bar-file", {"bars": frame.with_columns(trade_count=None, vwap=None).select(schema.names()).cast(schema)}
    )


def test_chunks_are_validated_against_the_chunks_before_and_recorded_as_one_run() -> None:
    context = load_context()
    migrate(context.warehouse)
    chunks = [bars("SPY", [0, 1, 2]), bars("SPY", [1, 3]), bars("X" * 1_000_000, [4])]

    result = ingest_chunks(context, "bar-file", iter(chunks), "file:test.csv")

    assert (result.rows_loaded, result.rows_quarantined) == ({"bars": 4}, 2)
    with context.warehouse.connect(read_only=True) as con:
        minutes = [row[0] for row in con.execute("SELECT minute(ts_event) FROM bars ORDER BY ts_event").fetchall()]
        quarantined = con.execute("SELECT reason, length(payload) FROM quarantine ORDER BY length(payload)").fetchall()
        [(loaded, rejected, summary)] = con.execute(
            "SELECT rows_loaded, rows_quarantined, validation_summary FROM ingestion_runs"
        ).fetchall()
    assert minutes == [30, 31, 32, 33]
    # The late minute opens the second chunk; the huge symbol's payload is kept to the limit.
    assert "expect_column_pair_values_a_to_be_greater_than_b(column_A=ts_event" in quarantined[0][0]
    assert "expect_column_values_to_match_regex(column=symbol" in quarantined[1][0]
    assert quarantined[1][1] == PAYLOAD_LIMIT
    assert (loaded, rejected) == (4, 2)
    assert json.loads(summary)["bars"]["rows"] == 6
