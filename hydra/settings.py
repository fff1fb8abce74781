"""HYDRA's settings: defaults < hydra.toml < environment, frozen, unknown keys refused.

Engine settings (what the pure core decides with) are the models of core.config; this
module adds the I/O side (warehouse, feeds, simulator) and reads the sources. Secrets are a
separate object read from the environment only, so they can never be written into
hydra.toml, a run's stored config or a log line by accident.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from adapters.config import FeedsConfig
from core.config import EngineConfig, Frozen, Mode, RegimeConfig, RiskConfig, StrategiesConfig

CONFIG_FILE_ENV = "HYDRA_CONFIG"
# Where deployed flow runs start (prefect.yaml's pull step): the environment's, not a setting.
HOME_ENV = "HYDRA_HOME"
DEFAULT_CONFIG_FILE = Path("hydra.toml")
ENV_PREFIX = "HYDRA_"
NESTED_DELIMITER = "__"


class ConfigError(Exception):
    """Configuration that cannot be used, said in lines a user can act on."""


class WarehouseConfig(Frozen):
    path: Path = Path("data/hydra.duckdb")
    lock_deadline_s: float = Field(default=30.0, gt=0)
    memory_limit: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="DuckDB's cache of the file, e.g. '1GB'; its default is 80% of the machine's memory",
    )


class SimConfig(Frozen):
    seed: int = 42
    start: datetime = Field(default=datetime(2026, 3, 2, tzinfo=UTC), description="the simulated history begins")
    warmup_sessions: int = Field(
        default=5, ge=0, description="NYSE sessions of minute history before trading (the regime needs 5)"
    )
    daily_history_sessions: int = Field(
        default=300, ge=0, description="sessions of daily bars simulated before `start` (crypto: days)"
    )
    days: float = Field(default=2.0, gt=0, description="simulated days of trading after the warm-up")
    cycle_minutes: int = Field(default=15, ge=1, description="simulated minutes between decision cycles")
    starting_cash: float = Field(default=100_000.0, gt=0)
    slippage_bps: float = Field(default=2.0, ge=0)
    fee_bps: float = Field(default=1.0, ge=0)
    unshortable: tuple[str, ...] = Field(
        default=(), description="symbols the simulated broker will not sell short, as Alpaca's shortable=false"
    )


class BacktestConfig(Frozen):
    scratch_limit_gb: float = Field(
        default=2.0,
        gt=0,
        description="the size data/backtests (the scratch warehouses of `--data` files) is kept within: "
        "the least recently used are removed first, never the one in use",
    )


class AlertsConfig(Frozen):
    block: str | None = Field(
        default=None,
        description="a Prefect notification block, '<block-type-slug>/<name>' (e.g. 'slack-webhook/ops'); "
        "without one, alerts are only recorded in the warehouse and logged",
    )
    feed_down_intervals: float = Field(
        default=3.0, gt=0, description="a feed is down once its last success is this many schedule intervals old"
    )
    repeat_after_hours: float = Field(default=6.0, gt=0, description="the same alert is not sent again sooner")


class TradingConfig(Frozen):
    session: str = Field(
        default="main",
        pattern=r"^[A-Za-z0-9_.]+$",
        description="names the run the minutely flow continues: run id '<mode>-<session>'",
    )


class HydraSettings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        case_sensitive=False,
    )

    mode: Mode = Mode.SIM
    warehouse: WarehouseConfig = WarehouseConfig()
    engine: EngineConfig = EngineConfig()
    feeds: FeedsConfig = FeedsConfig()
    sim: SimConfig = SimConfig()
    backtest: BacktestConfig = BacktestConfig()
    trading: TradingConfig = TradingConfig()
    alerts: AlertsConfig = AlertsConfig()

    @property
    def risk(self) -> RiskConfig:
        return self.engine.risk

    @property
    def regime(self) -> RegimeConfig:
        return self.engine.regime

    @property
    def strategies(self) -> StrategiesConfig:
        return self.engine.strategies

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        # Earlier sources win: explicit arguments, then the environment, then the file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))


class Secrets(BaseSettings):
    """API keys, from the environment only; repr and str show them masked."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    alpaca_api_key: SecretStr | None = Field(default=None, validation_alias="ALPACA_API_KEY")
    alpaca_secret_key: SecretStr | None = Field(default=None, validation_alias="ALPACA_SECRET_KEY")
    fred_api_key: SecretStr | None = Field(default=None, validation_alias="FRED_API_KEY")
    github_token: SecretStr | None = Field(default=None, validation_alias="GITHUB_TOKEN")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    def require(self, field: str) -> str:
        """The secret's value, or a ConfigError naming the environment variable to set."""
        value: SecretStr | None = getattr(self, field)
        if value is None or not value.get_secret_value():
            variable = type(self).model_fields[field].validation_alias
            raise ConfigError(f"{variable} is not set: export it in the environment")
        return value.get_secret_value()

    def masked(self) -> dict[str, str]:
        shown = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            shown[str(info.validation_alias)] = "(not set)" if value is None else "********"
        return shown


def load_settings(**overrides: Any) -> HydraSettings:
    """Read and validate the settings, or raise ConfigError listing every problem."""
    _refuse_unknown_environment()
    try:
        return HydraSettings(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    except (OSError, ValueError) as error:  # an unreadable or malformed hydra.toml
        raise ConfigError(f"cannot read configuration: {error}") from None


def with_overrides(settings: HydraSettings, changes: dict[str, Any]) -> HydraSettings:
    """The settings with dotted keys replaced (command-line options), validated as a whole:
    an option cannot loosen a limit any more than the file or the environment can."""
    data = settings.model_dump()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node: Any = data
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise ConfigError(f"unknown setting {dotted!r}")
        node[leaf] = value
    try:
        return HydraSettings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def load_secrets() -> Secrets:
    return Secrets()


def _refuse_unknown_environment() -> None:
    """pydantic-settings ignores HYDRA_* variables that match no field; a typo must not pass."""
    known_top = {name.upper() for name in HydraSettings.model_fields}
    unknown = []
    for variable in os.environ:
        if not variable.upper().startswith(ENV_PREFIX) or variable.upper() in (CONFIG_FILE_ENV, HOME_ENV):
            continue
        path = variable[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER)
        if path[0].upper() not in known_top or not _path_exists(HydraSettings, path):
            unknown.append(variable)
    if unknown:
        raise ConfigError("unknown setting(s) in the environment: " + ", ".join(sorted(unknown)))


def _path_exists(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    annotation = field.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel) and _path_exists(annotation, path[1:])


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{location}: {message}" if location else message)
    return "; ".join(lines)
