"""validate_table hands Great Expectations only the rows a polars pre-pass flags as suspect.

The property tests hold the outcome to GX run over every row, as validate_table did before the
pre-pass: the same rows passed, the same rows rejected with the same reasons in the same order.
On bars the rules are also restated in plain polars, a reference that does not go through GX.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from quality.rules import PRICE_COLUMNS, RULES, SKEW
from quality.validate import ROW, TableValidation, _run_suite, _triage, _with_helper_columns, validate_table

KEY = ("symbol", "timeframe", "ts_event")
INGESTED = datetime(2026, 3, 2, 15, 3, tzinfo=UTC)
NAN = float("nan")
SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "ts_event": pl.Datetime("us", "UTC"),
    **{column: pl.Float64() for column in PRICE_COLUMNS},
    "volume": pl.Float64(),
    "trade_count": pl.Int64(),
    "vwap": pl.Float64(),
    "source": pl.String(),
    "ts_ingested": pl.Datetime("us", "UTC"),
}
# A table with no rules but its key: GX checks only uniqueness, on float and integer keys.
SCRATCH = "scratch"
SCRATCH_SCHEMA: dict[str, pl.DataType] = {"name": pl.String(), "x": pl.Float64(), "n": pl.Int64()}
# Shrinking a failing batch through GX takes minutes: report the generated example as it is.
GX = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None, phases=[Phase.generate])


def _bar(symbol: str | None = "BTC/USD", minute: int = 0, price: float = 100.0) -> dict[str, object]:
    return {
        "symbol": symbol,
        "timeframe": "1Min",
        "ts_event": INGESTED - timedelta(minutes=10 - minute),
        **dict.fromkeys(PRICE_COLUMNS, price),
        "volume": 1.0,
        "trade_count": 3,
        "vwap": price,
        "source": "sim",
        "ts_ingested": INGESTED,
    }


def _bars(*rows: dict[str, object]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=SCHEMA, orient="row")


def _name(expectation: str, **kwargs: object) -> str:
    return f"{expectation}({', '.join(f'{k}={v}' for k, v in sorted(kwargs.items()))})"


UNIQUE_BARS = _name("expect_compound_columns_to_be_unique", column_list=list(KEY))
INCREASING = _name("expect_column_pair_values_a_to_be_greater_than_b", column_A="ts_event", column_B="_prev__ts_event")


def _not_null(column: str) -> str:
    return _name("expect_column_values_to_not_be_null", column=column)


# Few distinct values, so keys collide, times go backwards and whole rows repeat.
prices = st.sampled_from([None, NAN, -1.0, 0.0, 1.0, 2.0, 3.0])
dirty_bar = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["BTC/USD", "SPY", None]),
        "timeframe": st.sampled_from(["1Min", "1Min", "1Day", "5Min", None]),
        # Up to 10 minutes after ingestion: beyond the 2-minute skew is a future bar.
        "ts_event": st.one_of(st.none(), st.integers(-4, 10).map(lambda m: INGESTED + timedelta(minutes=m))),
        **{column: prices for column in PRICE_COLUMNS},
        "volume": st.sampled_from([None, NAN, -1.0, 0.0, 5.0]),
        "trade_count": st.sampled_from([None, 1, 7]),
        "vwap": prices,
        "source": st.sampled_from(["sim", "sim", None]),
        "ts_ingested": st.just(INGESTED),
    }
)
keyless_bar = dirty_bar.map(lambda bar: {**bar, **dict.fromkeys(KEY)})


@st.composite
def with_repeats(draw: st.DrawFn, row: st.SearchStrategy[dict[str, object]], max_size: int) -> list[dict[str, object]]:
    """Rows, some of them repeated exactly at random places (overlapping pages)."""
    rows = draw(st.lists(row, min_size=1, max_size=max_size))
    for _ in range(draw(st.integers(0, 3))):
        rows.insert(draw(st.integers(0, len(rows))), dict(draw(st.sampled_from(rows))))
    return rows


scratch_row = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["X", "Y", None]),
        # pandas, under GX, takes NaN and null as one missing value, and -0.0 == 0.0.
        "x": st.sampled_from([0.0, -0.0, 1.0, NAN, None]),
        # An integer column holding a null becomes float64 in pandas, where these two meet.
        "n": st.sampled_from([None, 1, 2**53, 2**53 + 1]),
    }
)


def _gx_on_every_row(table: str, rows: pl.DataFrame, key: tuple[str, ...]) -> dict[str, list[int]]:
    """What validate_table's GX suite finds when it is run on the whole collapsed batch."""
    everything = _with_helper_columns(rows.unique(maintain_order=True).with_row_index(ROW), RULES.get(table, ()))
    return _run_suite(table, key, everything)


def _assert_same_as_gx_on_every_row(
    outcome: TableValidation, table: str, rows: pl.DataFrame, key: tuple[str, ...]
) -> None:
    unique = rows.unique(maintain_order=True)
    everything = _gx_on_every_row(table, rows, key)
    reasons = defaultdict(list)
    for name, indices in everything.items():
        for index in indices:
            reasons[index].append(name)
    failed = sorted(reasons)

    assert outcome.exact_duplicates == rows.height - unique.height
    assert list(outcome.failures.items()) == [(name, len(indices)) for name, indices in everything.items()]
    assert [r.reasons for r in outcome.rejected] == [tuple(reasons[i]) for i in failed]
    is_failed = pl.int_range(pl.len()).is_in(failed)
    assert_frame_equal(pl.DataFrame([r.row for r in outcome.rejected], schema=rows.schema), unique.filter(is_failed))
    assert_frame_equal(outcome.passed, unique.filter(~is_failed))


def _oracle(rows: pl.DataFrame) -> tuple[pl.DataFrame, dict[int, set[str]]]:
    """The bars rules in plain polars: the collapsed frame and, per failing row, its reasons."""
    frame = rows.unique(maintain_order=True).with_row_index(ROW)
    missing = {c: pl.col(c).is_null() | (pl.col(c).is_nan() if SCHEMA[c] == pl.Float64() else False) for c in SCHEMA}
    present = {c: ~m for c, m in missing.items()}
    prev = pl.col("ts_event").shift(1).over(["symbol", "timeframe"])
    ahead = pl.col("ts_event") - pl.col("ts_ingested")
    checks: dict[str, pl.Expr] = {
        # GX leaves out the rows whose key is missing altogether; a partly missing key is a value.
        UNIQUE_BARS: pl.struct(KEY).is_duplicated() & pl.any_horizontal(present[c] for c in KEY),
        **{_not_null(c): missing[c] for c in ("symbol", "timeframe", "ts_event", *PRICE_COLUMNS, "volume", "source")},
        **{
            _name("expect_column_values_to_be_between", column=c, min_value=0.0, strict_min=True): present[c]
            & (pl.col(c) <= 0)
            for c in PRICE_COLUMNS
        },
        _name("expect_column_values_to_be_between", column="volume", min_value=0.0): present["volume"]
        & (pl.col("volume") < 0),
        **{
            _name("expect_column_pair_values_a_to_be_greater_than_b", column_A=a, column_B=b): present[a]
            & present[b]
            & (pl.col(a) < pl.col(b))
            for a, b in (("high", "low"), ("high", "open"), ("high", "close"), ("open", "low"), ("close", "low"))
        },
        _name("expect_column_values_to_be_in_set", column="timeframe", value_set=["1Day", "1Min"]): present["timeframe"]
        & ~pl.col("timeframe").is_in(["1Day", "1Min"]),
        INCREASING: pl.col("ts_event") <= prev,
        _name("expect_column_values_to_be_between", column="_ahead_s__ts_event", max_value=SKEW.total_seconds()): (
            ahead > SKEW
        ),
    }
    flags = frame.select(**{name: check.fill_null(False) for name, check in checks.items()}).rows()
    reasons = {index: {n for n, bad in zip(checks, row, strict=True) if bad} for index, row in enumerate(flags)}
    return frame, {index: names for index, names in reasons.items() if names}


@settings(GX, max_examples=30)
@given(with_repeats(st.one_of(dirty_bar, dirty_bar, dirty_bar, keyless_bar), max_size=12))
def test_bars_validation_matches_gx_on_every_row_and_the_rules(bars: list[dict[str, object]]) -> None:
    rows = _bars(*bars)

    outcome = validate_table("bars", rows, list(KEY))

    _assert_same_as_gx_on_every_row(outcome, "bars", rows, KEY)
    _, reasons = _oracle(rows)
    assert [set(r.reasons) for r in outcome.rejected] == [reasons[i] for i in sorted(reasons)]


@settings(GX, max_examples=20)
@given(with_repeats(scratch_row, max_size=8), st.sampled_from([("name", "x"), ("x",), ("n",), ("name", "n"), ()]))
def test_uniqueness_on_float_and_integer_keys_matches_gx_on_every_row(
    values: list[dict[str, object]], key: tuple[str, ...]
) -> None:
    rows = pl.DataFrame(values, schema=SCRATCH_SCHEMA, orient="row")

    outcome = validate_table(SCRATCH, rows, list(key))

    _assert_same_as_gx_on_every_row(outcome, SCRATCH, rows, key)


def test_a_clean_batch_sends_no_row_to_gx() -> None:
    rows = _bars(*(_bar(symbol, minute) for symbol in ("BTC/USD", "SPY") for minute in range(5)))

    unique, suspects = _triage("bars", rows, KEY)

    assert suspects.is_empty()
    assert unique is rows  # no key repeats, so no exact repeat to look for either
    outcome = validate_table("bars", rows, list(KEY))
    assert outcome.passed.equals(rows) and not outcome.rejected and not outcome.failures


def test_a_bar_out_of_order_is_judged_against_its_clean_predecessor() -> None:
    rows = _bars(_bar(minute=0), _bar(minute=2), _bar(minute=1), _bar("SPY", minute=1))

    _, suspects = _triage("bars", rows, KEY)
    outcome = validate_table("bars", rows, list(KEY))

    # Only the late bar goes to GX, with the time of the bar before it in the whole batch.
    assert suspects[ROW].to_list() == [2]
    assert suspects["_prev__ts_event"].to_list() == [rows["ts_event"][1]]
    assert [(r.row["ts_event"], r.reasons) for r in outcome.rejected] == [(rows["ts_event"][2], (INCREASING,))]
    assert outcome.passed.equals(rows.filter(pl.Series([True, True, False, True])))


def test_exact_repeats_collapse_and_rows_sharing_a_key_are_all_rejected() -> None:
    rows = _bars(_bar(minute=0), _bar(minute=0), _bar(minute=1), _bar(minute=1, price=101.0))

    outcome = validate_table("bars", rows, list(KEY))

    assert outcome.exact_duplicates == 1
    assert outcome.passed.equals(rows.head(1))
    assert [r.row["close"] for r in outcome.rejected] == [100.0, 101.0]
    assert outcome.failures[UNIQUE_BARS] == 2


def test_a_partly_missing_key_can_repeat_but_a_wholly_missing_one_cannot() -> None:
    partly = {**_bar(symbol=None), "volume": 2.0}
    wholly = {**partly, **dict.fromkeys(KEY)}
    rows = _bars(_bar(symbol=None), partly, wholly, {**wholly, "volume": 3.0})

    outcome = validate_table("bars", rows, list(KEY))

    # GX, like pandas, takes two missing symbols as equal, but leaves out rows with no key at all.
    # (The second bar of the missing symbol also repeats the first one's time.)
    assert [r.reasons for r in outcome.rejected] == [
        (UNIQUE_BARS, _not_null("symbol")),
        (UNIQUE_BARS, INCREASING, _not_null("symbol")),
        (_not_null("symbol"), _not_null("timeframe"), _not_null("ts_event")),
        (_not_null("symbol"), _not_null("timeframe"), _not_null("ts_event")),
    ]


def test_a_null_key_meets_a_nan_key_as_gx_sees_them() -> None:
    rows = pl.DataFrame({"name": ["X", "X", "Y"], "x": [NAN, None, 1.0]})

    outcome = validate_table(SCRATCH, rows, ["name", "x"])

    # polars keeps NaN and null apart; GX reads both as missing, so the first two share a key.
    assert [r.reasons for r in outcome.rejected] == [
        (_name("expect_compound_columns_to_be_unique", column_list=["name", "x"]),)
    ] * 2
    assert outcome.passed["name"].to_list() == ["Y"]
