"""Before a run: which registered strategies can decide on the data of its window, and why not."""

from __future__ import annotations

from core.calendar import Timeframe
from core.config import DEFAULT_WATCHLIST, StrategiesConfig
from core.strategy import REQUIREMENTS, Availability, Strategy, WindowData, availability
from core.types import Reason, ReasonCode
from strategies import REGISTRY
from warehouse.tables import FEED_TABLES

EVERY_TABLE = dict.fromkeys(FEED_TABLES, 100)
MINUTES = Timeframe.MIN_1


def bars_of(*symbols: str) -> dict[tuple[str, str], int]:
    return {(symbol, "1Min"): 390 for symbol in symbols}


def verdicts(data: WindowData, config: StrategiesConfig | None = None) -> dict[str, Reason | None]:
    return {found.strategy: found.reason for found in availability(REGISTRY, config or StrategiesConfig(), data)}


def test_with_every_feed_and_every_watched_symbol_all_five_can_run() -> None:
    found = availability(REGISTRY, StrategiesConfig(), WindowData(EVERY_TABLE, bars_of(*DEFAULT_WATCHLIST), MINUTES))
    assert [(f.strategy, f.can_run, f.note) for f in found] == [(s.name, True, "") for s in REGISTRY]


def test_on_bars_alone_the_metals_flow_and_the_graph_can_run_and_the_others_name_their_missing_tables() -> None:
    assert verdicts(WindowData({"bars": 19 * 390}, bars_of(*DEFAULT_WATCHLIST), MINUTES)) == {
        "liquidation_cascade": Reason(ReasonCode.INPUT_MISSING, "funding_rates, open_interest (no rows in the window)"),
        "macro_event": Reason(ReasonCode.INPUT_MISSING, "economic_events (no rows in the window)"),
        "precious_metals": None,
        "ai_disruption": Reason(
            ReasonCode.INPUT_MISSING, "github_releases, headlines, repo_stats (no rows in the window)"
        ),
        "cross_asset": None,
    }


def test_symbols_without_bars_stop_the_strategies_that_need_them() -> None:
    only_spy = verdicts(WindowData(EVERY_TABLE, bars_of("SPY"), MINUTES))
    assert only_spy["precious_metals"] == Reason(
        ReasonCode.SYMBOL_MISSING, "none of GLD, SLV, GDX has bars in the window"
    )
    assert only_spy["ai_disruption"] == Reason(ReasonCode.SYMBOL_MISSING, "IGV (no bars in the window)")
    assert only_spy["macro_event"] is None and only_spy["cross_asset"] is None
    without_gauge = verdicts(WindowData(EVERY_TABLE, bars_of(*(s for s in DEFAULT_WATCHLIST if s != "IGV")), MINUTES))
    assert without_gauge["ai_disruption"] == Reason(ReasonCode.SYMBOL_MISSING, "IGV (no bars in the window)")


def test_one_that_can_run_names_the_symbols_it_reads_that_have_no_bars() -> None:
    found = availability(
        REGISTRY, StrategiesConfig(), WindowData(EVERY_TABLE, bars_of("BTC/USD", "SPY", "TLT"), MINUTES)
    )
    cascade, cross = found[0], found[-1]
    assert (cascade.can_run, cascade.note) == (True, "no bars for ETH/USD")
    assert (cross.can_run, cross.note) == (True, "no bars for GLD, HYG, VIXY")


def test_cycles_on_daily_bars_leave_only_the_strategies_whose_rule_means_something_on_them() -> None:
    daily = {(symbol, "1Day"): 250 for symbol in DEFAULT_WATCHLIST}
    found = verdicts(WindowData(EVERY_TABLE, daily, Timeframe.DAY_1))
    assert found["cross_asset"] is None
    assert found["liquidation_cascade"] == Reason(
        ReasonCode.TIMEFRAME_TOO_COARSE, "needs 1Min bars or finer; the cycle decides on 1Day"
    )
    assert {name: reason.code for name, reason in found.items() if reason} == dict.fromkeys(
        ("liquidation_cascade", "macro_event", "precious_metals", "ai_disruption"), ReasonCode.TIMEFRAME_TOO_COARSE
    )


def test_a_disabled_strategy_says_so_first() -> None:
    config = StrategiesConfig.model_validate({"macro_event": {"enabled": False}})
    assert verdicts(WindowData({}, {}, MINUTES), config)["macro_event"] == Reason(
        ReasonCode.DISABLED, "in configuration"
    )


def test_the_check_follows_the_parameters_a_run_trades_with() -> None:
    config = StrategiesConfig.model_validate({"liquidation_cascade": {"symbols": ["ETH/USD"]}})
    data = WindowData(EVERY_TABLE, bars_of("BTC/USD"), MINUTES)
    assert verdicts(data, config)["liquidation_cascade"] == Reason(
        ReasonCode.SYMBOL_MISSING, "none of ETH/USD has bars in the window"
    )


def test_one_more_requirement_is_one_more_entry_checked_after_the_others() -> None:
    def refuse_cross_asset(strategy: Strategy, params: object, data: WindowData) -> Reason | None:
        return Reason(ReasonCode.HISTORY_SHORT, "test requirement") if strategy.name == "cross_asset" else None

    data = WindowData(EVERY_TABLE, bars_of(*DEFAULT_WATCHLIST), MINUTES)
    found = availability(REGISTRY, StrategiesConfig(), data, (*REQUIREMENTS, refuse_cross_asset))
    assert [f for f in found if not f.can_run] == [
        Availability("cross_asset", Reason(ReasonCode.HISTORY_SHORT, "test requirement"))
    ]
