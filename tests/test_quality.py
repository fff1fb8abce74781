"""validate_table hands Great Expectations only the rows a polars pre-pass flags as suspect.

The property tests hold the outcome to GX run over every row, as validate_table did before the
pre-pass: the same rows passed, the same rows rejected with the same reasons in the same order.
On bars the rules are also restated in plain polars, a reference that does not go through GX.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from adapters.tables import TABLE_SCHEMAS
from quality.rules import (
    BAR_SYMBOL,
    BINANCE_SYMBOL,
    CME_CODE,
    GITHUB_REPO,
    MAX_PRICE,
    MAX_QUANTITY,
    PRICE_COLUMNS,
    RULES,
    SERIES_ID,
    SKEW,
    Between,
    NotNull,
)
from quality.validate import (
    ROW,
    ChunkedValidation,
    TableValidation,
    _run_suite,
    _triage,
    _with_helper_columns,
    missing_as_null,
    validate_table,
)
from warehouse import Warehouse

KEY = ("symbol", "timeframe", "ts_event")
INGESTED = datetime(2026, 3, 2, 15, 3, tzinfo=UTC)
NAN = float("nan")
INF = float("inf")
TIMEFRAMES = sorted(["1Min", "5Min", "15Min", "30Min", "1Hour", "1Day"])
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
prices = st.sampled_from([None, NAN, -1.0, 0.0, 1.0, 2.0, 3.0, INF, -INF, MAX_PRICE * 2])
dirty_bar = st.fixed_dictionaries(
    {
        # A trailing newline passes Python's $ but not \Z; a formula must never reach a sheet.
        "symbol": st.sampled_from(["BTC/USD", "SPY", "SPY", None, "SPY\n", "=HYPERLINK(1)", "spy", "X" * 11]),
        "timeframe": st.sampled_from(["1Min", "1Min", "1Day", "30Min", "2Min", None]),
        # Up to 10 minutes after ingestion: beyond the 2-minute skew is a future bar.
        "ts_event": st.one_of(st.none(), st.integers(-4, 10).map(lambda m: INGESTED + timedelta(minutes=m))),
        **{column: prices for column in PRICE_COLUMNS},
        "volume": st.sampled_from([None, NAN, -1.0, 0.0, 5.0, 1e308, INF]),
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
    collapsed = missing_as_null(rows).unique(maintain_order=True)
    everything = _with_helper_columns(collapsed.with_row_index(ROW), RULES.get(table, ()), {})
    return _run_suite(table, key, everything)


def _assert_same_as_gx_on_every_row(
    outcome: TableValidation, table: str, rows: pl.DataFrame, key: tuple[str, ...]
) -> None:
    # GX reads NaN as missing, and validate_table stores it so: as NULL.
    unique = missing_as_null(rows).unique(maintain_order=True)
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
    frame = rows.with_columns(pl.col(pl.Float64).fill_nan(None)).unique(maintain_order=True).with_row_index(ROW)
    missing = {c: pl.col(c).is_null() for c in SCHEMA}
    present = {c: ~m for c, m in missing.items()}
    prev = pl.col("ts_event").shift(1).over(["symbol", "timeframe"])
    ahead = pl.col("ts_event") - pl.col("ts_ingested")
    checks: dict[str, pl.Expr] = {
        # GX leaves out the rows whose key is missing altogether; a partly missing key is a value.
        UNIQUE_BARS: pl.struct(KEY).is_duplicated() & pl.any_horizontal(present[c] for c in KEY),
        **{_not_null(c): missing[c] for c in ("symbol", "timeframe", "ts_event", *PRICE_COLUMNS, "source")},
        _name("expect_column_values_to_match_regex", column="symbol", regex=BAR_SYMBOL): present["symbol"]
        & ~pl.col("symbol").map_elements(
            lambda symbol: re.fullmatch(r"[A-Z][A-Z0-9.]{0,9}(?:/[A-Z]{3,4})?", symbol) is not None,
            return_dtype=pl.Boolean,
        ),
        **{
            _name(
                "expect_column_values_to_be_between", column=c, max_value=MAX_PRICE, min_value=0.0, strict_min=True
            ): present[c] & ((pl.col(c) <= 0) | (pl.col(c) > MAX_PRICE))
            for c in (*PRICE_COLUMNS, "vwap")
        },
        _name("expect_column_values_to_be_between", column="volume", max_value=MAX_QUANTITY, min_value=0.0): present[
            "volume"
        ]
        & ((pl.col("volume") < 0) | (pl.col("volume") > MAX_QUANTITY)),
        **{
            _name("expect_column_pair_values_a_to_be_greater_than_b", column_A=a, column_B=b): present[a]
            & present[b]
            & (pl.col(a) < pl.col(b))
            for a, b in (("high", "low"), ("high", "open"), ("high", "close"), ("open", "low"), ("close", "low"))
        },
        _name("expect_column_values_to_be_in_set", column="timeframe", value_set=TIMEFRAMES): present["timeframe"]
        & ~pl.col("timeframe").is_in(TIMEFRAMES),
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


def test_nan_is_the_missing_value_gx_takes_it_for_and_is_stored_as_null() -> None:
    rows = pl.DataFrame({"name": ["X", "X", "Y"], "x": [NAN, None, 1.0]})

    outcome = validate_table(SCRATCH, rows, ["name", "x"])

    # polars keeps NaN and null apart, GX reads both as missing: made NULL, the first two rows
    # are one row repeated, not two rows sharing a key.
    assert outcome.exact_duplicates == 1 and not outcome.rejected
    assert outcome.passed.rows() == [("X", None), ("Y", 1.0)]


def test_a_bar_of_infinite_or_absurd_numbers_or_a_bad_symbol_is_quarantined_with_its_reasons() -> None:
    rows = _bars(
        _bar(minute=0),
        {**_bar(minute=1), "high": INF, "volume": 1e308},
        {**_bar(minute=2), "vwap": -INF},
        _bar("=HYPERLINK(1)", minute=3),
        _bar("X" * 1_000_000, minute=4),
        {**_bar(minute=5), "volume": None},  # unknown volume: allowed
    )

    outcome = validate_table("bars", rows, list(KEY))

    high = _name(
        "expect_column_values_to_be_between", column="high", max_value=MAX_PRICE, min_value=0.0, strict_min=True
    )
    volume = _name("expect_column_values_to_be_between", column="volume", max_value=MAX_QUANTITY, min_value=0.0)
    vwap = _name(
        "expect_column_values_to_be_between", column="vwap", max_value=MAX_PRICE, min_value=0.0, strict_min=True
    )
    symbol = _name("expect_column_values_to_match_regex", column="symbol", regex=BAR_SYMBOL)
    assert [(r.row["ts_event"].minute, set(r.reasons)) for r in outcome.rejected] == [
        (54, {high, volume}),
        (55, {vwap}),
        (56, {symbol}),
        (57, {symbol}),
    ]
    assert outcome.passed["ts_event"].dt.minute().to_list() == [53, 58]


def test_every_number_of_every_table_has_a_finite_lower_and_upper_bound() -> None:
    unbounded = []
    for table, schema in TABLE_SCHEMAS.items():
        bounded = {
            rule.column
            for rule in RULES.get(table, ())
            if isinstance(rule, Between)
            and rule.low is not None
            and rule.high is not None
            and math.isfinite(rule.low)
            and math.isfinite(rule.high)
        }
        unbounded += [f"{table}.{c}" for c, dtype in schema.items() if dtype.is_numeric() and c not in bounded]
    assert unbounded == []


def test_every_column_the_warehouse_requires_is_required_by_validation(warehouse: Warehouse) -> None:
    """A row missing a NOT NULL column must be quarantined with its reason: before, a headline
    without its matches, a release without draft, or a premium without premium_pct passed
    validation and then failed its table's INSERT, taking the whole load down with it."""
    with warehouse.connect(read_only=True) as con:
        required = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE is_nullable = 'NO' "
            "AND column_name <> 'ts_ingested' AND table_name IN $tables",
            {"tables": list(TABLE_SCHEMAS)},
        ).fetchall()
    checked = {(table, c) for table, rules in RULES.items() for r in rules if isinstance(r, NotNull) for c in r.columns}
    assert sorted(set(required) - checked) == []


def test_identifiers_match_the_patterns_of_their_sources() -> None:
    real = {
        BAR_SYMBOL: ["SPY", "BRK.B", "BTC/USD", "ETH/USD", "SHIB/USD", "VIXY", "GDX"],
        BINANCE_SYMBOL: ["BTCUSDT", "ETHUSDT", "1000PEPEUSDT", "BTCUSDT_250627"],
        CME_CODE: ["GC", "SI", "MGC", "HG"],
        SERIES_ID: ["VIX", "VIXCLS", "BAMLH0A0HYM2", "USDCNY", "DGS10"],
        GITHUB_REPO: ["openai/openai-python", "google-deepmind/gemma", "meta-llama/llama-models"],
    }
    bad = ["", '=HYPERLINK("x")', "spy", "SPY\n", " SPY", "X" * 200, "@SUM(A1)", "+1", "-1"]
    for pattern, symbols in real.items():
        assert [s for s in symbols if not re.match(pattern, s)] == []
        assert [s for s in bad if re.match(pattern, s)] == []


def test_a_table_validated_in_chunks_judges_each_chunks_first_row_against_the_chunk_before() -> None:
    rows = _bars(_bar(minute=0), _bar(minute=2), _bar(minute=1), _bar("SPY", minute=1), _bar(minute=3))
    whole = validate_table("bars", rows, list(KEY))

    chunked = ChunkedValidation("bars", KEY)
    outcomes = [chunked.validate(rows.slice(start, 2)) for start in (0, 2, 4)]

    # The late bar opens the second chunk: it is late against the last bar of the first.
    assert [r.reasons for o in outcomes for r in o.rejected] == [r.reasons for r in whole.rejected] == [(INCREASING,)]
    assert_frame_equal(pl.concat([o.passed for o in outcomes]), whole.passed)
    assert chunked.summary == {
        "rows": 5,
        "passed": 4,
        "rejected": 1,
        "exact_duplicates_collapsed": 0,
        "failed_expectations": {INCREASING: 1},
    }


@settings(GX, max_examples=15)
@given(st.lists(dirty_bar, min_size=1, max_size=12), st.integers(1, 5))
def test_chunks_without_a_key_repeated_across_them_are_judged_as_the_whole_batch(
    bars: list[dict[str, object]], size: int
) -> None:
    rows = _bars(*bars).unique(subset=KEY, keep="first", maintain_order=True)  # uniqueness is per chunk
    whole = validate_table("bars", rows, list(KEY))

    chunked = ChunkedValidation("bars", KEY)
    outcomes = [chunked.validate(rows.slice(start, size)) for start in range(0, rows.height, size)]

    assert [r.reasons for o in outcomes for r in o.rejected] == [r.reasons for r in whole.rejected]
    assert_frame_equal(pl.concat([o.passed for o in outcomes]), whole.passed)
