"""Whether a run can trade, as `hydra status` tells it: the history stored against what a cycle
reads (core.readiness.history_needs), and what kept the run's newest cycle from trading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from core.calendar import Timeframe, market_calendar
from core.config import EngineConfig
from core.readiness import history_needs
from warehouse import Warehouse
from warehouse.read import query_frame
from warehouse.sqlfiles import read_sql


@dataclass(frozen=True)
class HistoryHeld:
    """Sessions of a symbol's bars of one timeframe held in the window a cycle at `now` reads."""

    symbol: str
    timeframe: Timeframe
    held: int
    due: int  # the window's sessions that can have bars by now
    since: datetime  # where that window begins

    @property
    def complete(self) -> bool:
        return self.held >= self.due

    def __str__(self) -> str:
        text = f"{self.symbol} {self.timeframe} bars: {self.held} of {self.due} sessions"
        if self.complete:
            return text
        return f"{text}; backfill them: hydra ingest bars --start {self.since:%Y-%m-%d}"


def history_held(warehouse: Warehouse, config: EngineConfig, now: datetime) -> list[HistoryHeld]:
    """The regime's reference symbol, in the cycle's timeframe and in daily bars."""
    needs, sessions = history_needs(config), market_calendar().equities
    symbol = config.regime.reference
    held = []
    with warehouse.connect(read_only=True) as con:
        for timeframe in dict.fromkeys((config.timeframe, Timeframe.DAY_1)):
            since = needs.since(sessions, now, timeframe)
            params = {"symbol": symbol, "timeframe": timeframe.value, "since": since}
            (count,) = con.execute(read_sql("read/history_sessions"), params).fetchone() or (0,)
            held.append(HistoryHeld(symbol, timeframe, int(count), needs.sessions_due(sessions, now, timeframe), since))
    return held


def last_cycle_readiness(warehouse: Warehouse, run_id: str) -> pl.DataFrame:
    """The run's newest cycle and what kept it from trading (sql/read/cycle_readiness.sql)."""
    with warehouse.connect(read_only=True) as con:
        return query_frame(con, "read/cycle_readiness", {"run_id": run_id})
