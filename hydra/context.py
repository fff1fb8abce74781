"""What a job or flow run needs, loaded inside it: served flow runs are fresh subprocesses,
so nothing may be inherited from the process that scheduled them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from core.calendar import MarketCalendar, nyse_calendar
from hydra.settings import HydraSettings, load_secrets, load_settings
from hydra.sources import SourceContext
from warehouse import Warehouse


def open_warehouse(settings: HydraSettings) -> Warehouse:
    return Warehouse(settings.warehouse.path, settings.warehouse.lock_deadline_s, settings.warehouse.memory_limit)


def load_context(settings: HydraSettings | None = None) -> SourceContext:
    loaded = settings or load_settings()
    return SourceContext(settings=loaded, secrets=load_secrets(), warehouse=open_warehouse(loaded))


# Real history files reach back to 1990; live trading looks at the sessions ahead of today.
CALENDAR_FIRST_DAY = date(1990, 1, 1)
CALENDAR_DAYS_AHEAD = timedelta(days=2 * 366)


def market_calendar() -> MarketCalendar:
    """The exchange calendar of every world, from 1990 to two years past today (built once a day)."""
    return nyse_calendar(CALENDAR_FIRST_DAY, datetime.now(UTC).date() + CALENDAR_DAYS_AHEAD)
