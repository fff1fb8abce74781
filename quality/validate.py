"""Great Expectations validation of a batch before it loads: good rows pass, bad rows are
quarantined with the expectations they failed.

GX is exact but slow (seconds per million rows), and nearly every row is clean. A polars
pre-pass therefore flags the rows that could fail some expectation, a superset of those that
do; GX judges only those, and every other row passes. The outcome (rows passed, rows rejected,
their reasons and in which order) is what GX over the whole batch gives, which
tests/test_quality.py holds it to; only the work changes.

GX is imported here and only here, on the first batch with a suspect row (its import costs
seconds): the trading flow never imports this module. The context and one suite per table
are built once per process. Each row carries its position in a hidden `_row` column so GX's
unexpected-index lists map failures back to rows; helper columns (`_prev__*`, `_ahead_s__*`)
let GX express the rules that compare a row with its predecessor or with its ingestion time.

NaN is a missing value, as GX (through pandas) reads it: a float NaN becomes NULL before any
rule runs, so it fails NotNull where a value is required and is stored as NULL, never as NaN.

A file too big for memory is validated in chunks (ChunkedValidation): each chunk is judged with
the rows before it standing in as predecessors for the rules that compare a row with the one
before it. Uniqueness and the collapsing of exact repeats stay within a chunk; a key that
repeats an earlier chunk's is caught as out of order when its group's times must increase.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import polars as pl

from quality.rules import (
    RULES,
    AtLeast,
    Between,
    IncreasingWithin,
    InSet,
    Matches,
    NotAfterIngestion,
    NotNull,
    Rule,
)

ROW = "_row"

# GX reads tz-aware columns through Series.values, which pandas 3 deprecates; its comparisons
# are between UTC instants either way, so the warning would only flood every ingestion log.
warnings.filterwarnings("ignore", message="Series.values returning an ndarray", category=DeprecationWarning)


@dataclass(frozen=True)
class RejectedRow:
    row: dict[str, Any]
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class TableValidation:
    table: str
    passed: pl.DataFrame
    rejected: list[RejectedRow]
    exact_duplicates: int
    failures: dict[str, int] = field(default_factory=dict)  # expectation -> failing rows

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.passed.height + len(self.rejected),
            "passed": self.passed.height,
            "rejected": len(self.rejected),
            "exact_duplicates_collapsed": self.exact_duplicates,
            "failed_expectations": dict(self.failures),
        }


def validate_table(table: str, rows: pl.DataFrame, key: Sequence[str]) -> TableValidation:
    """Split `rows` into those that pass the table's suite and those that do not.

    Rows repeated exactly (overlapping pages) are collapsed first: they are not bad data.
    Rows that share a natural key but differ are all rejected, since nothing says which is right.
    """
    outcome, _ = _validate(table, missing_as_null(rows), tuple(key), {})
    return outcome


def missing_as_null(rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` with every float NaN made NULL: the missing value GX takes it for."""
    floats = [name for name, dtype in rows.schema.items() if dtype.is_float()]
    return rows.with_columns(pl.col(floats).fill_nan(None)) if floats else rows


Predecessors = dict[IncreasingWithin, pl.DataFrame]


class ChunkedValidation:
    """validate_table over a table read in chunks, memory bounded by a chunk.

    Each chunk is judged as one batch, except that the last row of each group in the chunks
    before it is the predecessor its first row is compared with (IncreasingWithin). The totals
    of every chunk so far are in `summary`.
    """

    def __init__(self, table: str, key: Sequence[str]) -> None:
        self.table = table
        self.key = tuple(key)
        self._predecessors: Predecessors = {}
        self._totals: dict[str, int] = dict.fromkeys(("rows", "passed", "rejected", "exact_duplicates_collapsed"), 0)
        self._failures: dict[str, int] = {}

    def validate(self, rows: pl.DataFrame) -> TableValidation:
        outcome, judged = _validate(self.table, missing_as_null(rows), self.key, self._predecessors)
        for rule in (rule for rule in RULES.get(self.table, ()) if isinstance(rule, IncreasingWithin)):
            columns = [*rule.group_by, rule.column]
            seen = [self._predecessors[rule]] if rule in self._predecessors else []
            latest = pl.concat([*seen, judged.select(columns)])
            self._predecessors[rule] = latest.group_by(list(rule.group_by), maintain_order=True).last()
        for name, count in outcome.summary.items():
            if isinstance(count, int):
                self._totals[name] += count
        for expectation, count in outcome.failures.items():
            self._failures[expectation] = self._failures.get(expectation, 0) + count
        return outcome

    @property
    def summary(self) -> dict[str, Any]:
        return {**self._totals, "failed_expectations": dict(self._failures)}


def _validate(
    table: str, rows: pl.DataFrame, key: tuple[str, ...], predecessors: Predecessors
) -> tuple[TableValidation, pl.DataFrame]:
    """The verdict on `rows` (NaN already NULL), and the rows it judged: exact repeats collapsed."""
    unique, suspects = _triage(table, rows, key, predecessors)
    failing = _run_suite(table, key, suspects) if not suspects.is_empty() else {}
    reasons: defaultdict[int, list[str]] = defaultdict(list)
    for expectation, indices in failing.items():
        for index in indices:
            reasons[index].append(expectation)
    failed = sorted(reasons)
    is_failed = pl.int_range(pl.len()).is_in(failed)
    rejected = [
        RejectedRow(row=row, reasons=tuple(reasons[index]))
        for index, row in zip(failed, unique.filter(is_failed).iter_rows(named=True), strict=True)
    ]
    outcome = TableValidation(
        table=table,
        passed=unique.filter(~is_failed),
        rejected=rejected,
        exact_duplicates=rows.height - unique.height,
        failures={expectation: len(indices) for expectation, indices in failing.items()},
    )
    return outcome, unique


def _triage(
    table: str, rows: pl.DataFrame, key: tuple[str, ...], predecessors: Predecessors | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`rows` with exact repeats collapsed, and the suspects among them: the only rows GX judges.

    Suspects carry `_row` (their position in the collapsed rows) and the helper columns.
    """
    rules = RULES.get(table, ())
    repeated = _key_repeats(rows, key)
    # Exact repeats share their key, so the all-column unique(), the dearest step on a clean
    # batch, is needed only when some key repeats (or there is no key to tell).
    unique = rows.unique(maintain_order=True) if repeated is None or repeated.any() else rows
    if unique.height < rows.height:
        repeated = _key_repeats(unique, key)
    # Helper columns compare a row with its predecessor in the batch, so they are computed on
    # every row before the clean ones are set aside.
    prepared = _with_helper_columns(unique.with_row_index(ROW), rules, predecessors or {})
    return unique, prepared.filter(_suspect(prepared, rules, key, repeated))


def _key_repeats(frame: pl.DataFrame, key: tuple[str, ...]) -> pl.Series | None:
    """Per row, whether another row's key may equal its own as GX sees it; None without a key.

    polars, like pandas under GX, takes two nulls (or two NaN) as equal. pandas turns an integer
    column holding a null into float64, where integers past 2**53 can meet: integer key columns
    are compared as floats, which only ever merges keys, so the flags stay a superset.
    """
    if not key:
        return None
    as_gx_sees = [pl.col(c).cast(pl.Float64) if frame.schema[c].is_integer() else pl.col(c) for c in key]
    return frame.select(as_gx_sees).is_duplicated()


def _suspect(frame: pl.DataFrame, rules: Sequence[Rule], key: tuple[str, ...], repeated: pl.Series | None) -> pl.Series:
    """Rows that could fail some expectation of the suite, a superset of those that do.

    A row not flagged here passes every expectation; a flagged row may pass too, GX decides.
    Row-wise expectations give the same verdict on a row whatever else is in the frame; a
    uniqueness failure needs a partner, which is flagged as well, so GX over the suspects finds
    exactly the failures GX over the whole batch would.

    Nulls are skipped as GX skips them (NotNull aside); there is no NaN left (missing_as_null).
    A null anywhere in the key flags its row: an integer key column holding a null is float64
    to GX, and so it is on the suspects exactly when it is on the whole batch. (GX ignores a row
    whose key columns are all missing: flagging it is merely wasted work, and NotNull fails it.)
    Infinity is above every high bound and below every low one, in polars as in GX.
    """
    columns = set(frame.columns)
    checks: list[pl.Expr] = [pl.col(c).is_null() for c in key if c in columns]
    for rule in rules:
        if isinstance(rule, NotNull):
            checks += [pl.col(c).is_null() for c in rule.columns if c in columns]
        elif isinstance(rule, Between) and rule.column in columns:
            value = pl.col(rule.column)
            if rule.low is not None:
                checks.append(value <= rule.low if rule.strict_low else value < rule.low)
            if rule.high is not None:
                checks.append(value > rule.high)
        elif isinstance(rule, AtLeast) and {rule.column_a, rule.column_b} <= columns:
            checks.append(pl.col(rule.column_a) < pl.col(rule.column_b))
        elif isinstance(rule, InSet) and rule.column in columns:
            checks.append(~pl.col(rule.column).is_in(sorted(rule.values)))
        elif isinstance(rule, Matches) and rule.column in columns:
            checks.append(~pl.col(rule.column).str.contains(_rust_regex(rule.pattern)))
        elif isinstance(rule, IncreasingWithin) and rule.column in columns:
            checks.append(pl.col(rule.column) <= pl.col(f"_prev__{rule.column}"))
        elif isinstance(rule, NotAfterIngestion) and rule.column in columns:
            checks.append(pl.col(f"_ahead_s__{rule.column}") > rule.tolerance.total_seconds())
    flags = frame.select(
        pl.any_horizontal(pl.repeat(False, pl.len()), *(check.fill_null(False) for check in checks))
    ).to_series()
    return flags | repeated if repeated is not None else flags


def _with_helper_columns(frame: pl.DataFrame, rules: Sequence[Rule], predecessors: Predecessors) -> pl.DataFrame:
    helpers: list[pl.Expr | pl.Series] = []
    for rule in rules:
        if isinstance(rule, IncreasingWithin):
            helpers.append(_previous(frame, rule, predecessors.get(rule)))
        elif isinstance(rule, NotAfterIngestion):
            ahead = (pl.col(rule.column) - pl.col("ts_ingested")).dt.total_microseconds() / 1e6
            helpers.append(ahead.alias(f"_ahead_s__{rule.column}"))
    return frame.with_columns(helpers) if helpers else frame


def _previous(frame: pl.DataFrame, rule: IncreasingWithin, before: pl.DataFrame | None) -> pl.Series:
    """Per row, `rule.column` of the row before it in its group: in `frame`, else in `before`
    (the last row of each group in the chunks already judged)."""
    columns = [*rule.group_by, rule.column]
    stacked = frame.select(columns) if before is None else pl.concat([before, frame.select(columns)])
    previous = stacked.select(pl.col(rule.column).shift(1).over(list(rule.group_by)).alias(f"_prev__{rule.column}"))
    return previous.to_series().slice(stacked.height - frame.height)


def _run_suite(table: str, key: tuple[str, ...], frame: pl.DataFrame) -> dict[str, list[int]]:
    """Expectation description -> the `_row` indices that failed it."""
    suite = _suite(table, key, tuple(column for column in frame.columns))
    batch = _batch_definition(table).get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]})
    failing: dict[str, list[int]] = {}
    for outcome in result.results:
        if outcome.success:
            continue
        indices = [int(item[ROW]) for item in outcome.result.get("unexpected_index_list") or []]
        failing[_describe(outcome.expectation_config)] = indices
    return failing


@cache
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


@cache
def _batch_definition(table: str) -> Any:
    source = _context().data_sources.add_or_update_pandas(f"hydra-{table}")
    return source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("batch")


@cache
def _suite(table: str, key: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    import great_expectations as gx

    context = _context()
    expectations = _expectations(RULES.get(table, ()), key, set(columns))
    return context.suites.add(
        gx.ExpectationSuite(name=f"{table}:{','.join(key)}:{','.join(columns)}", expectations=expectations)
    )


def _expectations(rules: Sequence[Rule], key: tuple[str, ...], columns: set[str]) -> list[Any]:
    import great_expectations.expectations

    # GX's package does not re-export its expectation classes for type checkers.
    gxe: Any = great_expectations.expectations
    built: list[Any] = []
    if len(key) > 1:
        built.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key)))
    elif key:
        built.append(gxe.ExpectColumnValuesToBeUnique(column=key[0]))
    for rule in rules:
        if isinstance(rule, NotNull):
            built += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in rule.columns if c in columns]
        elif isinstance(rule, Between) and rule.column in columns:
            built.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=rule.column, min_value=rule.low, max_value=rule.high, strict_min=rule.strict_low
                )
            )
        elif isinstance(rule, AtLeast) and {rule.column_a, rule.column_b} <= columns:
            built.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=rule.column_a,
                    column_B=rule.column_b,
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                )
            )
        elif isinstance(rule, InSet) and rule.column in columns:
            built.append(gxe.ExpectColumnValuesToBeInSet(column=rule.column, value_set=sorted(rule.values)))
        elif isinstance(rule, Matches) and rule.column in columns:
            built.append(gxe.ExpectColumnValuesToMatchRegex(column=rule.column, regex=rule.pattern))
        elif isinstance(rule, IncreasingWithin) and rule.column in columns:
            built.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=rule.column,
                    column_B=f"_prev__{rule.column}",
                    or_equal=False,
                    ignore_row_if="either_value_is_missing",
                )
            )
        elif isinstance(rule, NotAfterIngestion) and rule.column in columns:
            built.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=f"_ahead_s__{rule.column}", max_value=rule.tolerance.total_seconds()
                )
            )
    return built


def _rust_regex(pattern: str) -> str:
    """A rule's Python pattern for polars (Rust's regex): its end of text is \\z, not \\Z.

    Python's $ also matches before a final newline, which is why the rules anchor with \\Z.
    """
    return pattern.replace(r"\Z", r"\z")


def _describe(config: Any) -> str:
    """A short, stable name for an expectation, as it appears in quarantine reasons."""
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "ignore_row_if", "or_equal"}}
    arguments = ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if v is not None and v is not False)
    return f"{config.type}({arguments})"
