"""What a job or flow run needs, loaded inside it: served flow runs are fresh subprocesses,
so nothing may be inherited from the process that scheduled them."""

from __future__ import annotations

# The exchange calendar of every world, the simulator's and the simulated broker's too (core.calendar).
from core.calendar import market_calendar as market_calendar
from hydra.settings import HydraSettings, load_secrets, load_settings
from hydra.sources import SourceContext
from warehouse import Warehouse


def open_warehouse(settings: HydraSettings) -> Warehouse:
    return Warehouse(settings.warehouse.path, settings.warehouse.lock_deadline_s, settings.warehouse.memory_limit)


def load_context(settings: HydraSettings | None = None) -> SourceContext:
    loaded = settings or load_settings()
    return SourceContext(settings=loaded, secrets=load_secrets(), warehouse=open_warehouse(loaded))
