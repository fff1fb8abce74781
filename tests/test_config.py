from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.config import PROFILE_CAPS, EngineConfig, RiskConfig, RiskLimits, RiskProfile
from hydra.context import open_warehouse
from hydra.settings import ConfigError, load_secrets, load_settings


def write_toml(text: str) -> None:
    Path("hydra.toml").write_text(text, encoding="utf-8")


def test_defaults_are_the_moderate_profile_in_sim_mode() -> None:
    settings = load_settings()
    assert settings.mode == "sim"
    assert settings.warehouse.path == Path("data/hydra.duckdb")
    assert len(settings.engine.watchlist) == 19
    assert settings.risk.limits == PROFILE_CAPS[RiskProfile.MODERATE]
    assert settings.risk.limits.max_position == 0.03
    assert settings.feeds.alpaca_data.base_url.endswith(".markets")


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml('mode = "backtest"\n[sim]\nseed = 1\ndays = 2\n')
    monkeypatch.setenv("HYDRA_SIM__SEED", "9")
    settings = load_settings()
    assert (settings.mode, settings.sim.seed, settings.sim.days) == ("backtest", 9, 2.0)


def test_config_file_path_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "conf" / "prod.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text('[engine.risk]\nprofile = "conservative"\n', encoding="utf-8")
    monkeypatch.setenv("HYDRA_CONFIG", str(elsewhere))
    assert load_settings().risk.limits.max_daily_loss == 0.03


def test_an_unknown_key_in_the_file_is_refused_by_name() -> None:
    write_toml("[engine.risk]\nmax_postion = 0.01\n")
    with pytest.raises(ConfigError, match=r"engine\.risk\.max_postion: unknown setting"):
        load_settings()


def test_an_unknown_hydra_variable_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_SIM__SEEDS", "3")
    with pytest.raises(ConfigError, match="HYDRA_SIM__SEEDS"):
        load_settings()


def test_a_malformed_file_is_a_config_error() -> None:
    write_toml("[engine\n")
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings()


@pytest.mark.parametrize("profile", list(RiskProfile))
@pytest.mark.parametrize("limit", list(RiskLimits.model_fields))
def test_a_limit_looser_than_its_profile_is_refused_naming_the_limit(profile: RiskProfile, limit: str) -> None:
    cap = getattr(PROFILE_CAPS[profile], limit)
    looser = cap * 0.5 if limit == "cooldown_hours" else (cap + 1 if isinstance(cap, int) else min(cap * 1.5, 1.0))
    with pytest.raises(ValidationError, match=rf"{limit} = {looser} is looser than the {profile.value} profile"):
        RiskConfig(profile=profile, **{limit: looser})


def test_stricter_limits_are_accepted_and_applied() -> None:
    risk = RiskConfig(profile=RiskProfile.AGGRESSIVE, max_position=0.02, cooldown_hours=8)
    assert (risk.limits.max_position, risk.limits.cooldown_hours) == (0.02, 8)
    assert risk.limits.max_daily_loss == PROFILE_CAPS[RiskProfile.AGGRESSIVE].max_daily_loss


def test_a_looser_limit_from_the_environment_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_ENGINE__RISK__PROFILE", "conservative")
    monkeypatch.setenv("HYDRA_ENGINE__RISK__MAX_TRADES_PER_DAY", "25")
    with pytest.raises(ConfigError, match="max_trades_per_day = 25 is looser than the conservative profile's limit 20"):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.mode = "paper"  # type: ignore[misc]


def test_watchlist_must_be_unique_and_cover_strategy_symbols() -> None:
    with pytest.raises(ValidationError, match="watchlist repeats SPY"):
        EngineConfig(watchlist=("SPY", "SPY", "TLT"))
    with pytest.raises(ValidationError, match=r"liquidation_cascade\.symbols not in the watchlist: BTC/USD, ETH/USD"):
        EngineConfig(watchlist=("SPY", "TLT", "GLD", "SLV", "GDX", "HYG"))


def test_secrets_are_masked_everywhere_they_could_be_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PKFAKEKEY0123456789")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_fake_token_abcdef")
    secrets = load_secrets()
    shown = " ".join([repr(secrets), str(secrets), secrets.model_dump_json(), str(secrets.masked())])
    assert "PKFAKEKEY0123456789" not in shown and "ghp_fake_token_abcdef" not in shown
    assert secrets.masked() == {
        "ALPACA_API_KEY": "********",
        "ALPACA_SECRET_KEY": "(not set)",
        "FRED_API_KEY": "(not set)",
        "GITHUB_TOKEN": "********",
    }
    assert secrets.require("alpaca_api_key") == "PKFAKEKEY0123456789"
    with pytest.raises(ConfigError, match="ALPACA_SECRET_KEY is not set"):
        secrets.require("alpaca_secret_key")


def test_secrets_are_not_settings() -> None:
    write_toml('alpaca_api_key = "PKFAKE"\n')
    with pytest.raises(ConfigError, match="alpaca_api_key: unknown setting"):
        load_settings()


def test_hydra_home_for_deployed_runs_is_not_mistaken_for_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_HOME", "/srv/hydra")
    assert load_settings().mode.value == "sim"


def test_the_warehouse_memory_limit_reaches_the_warehouse_and_needs_a_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_WAREHOUSE__MEMORY_LIMIT", "1.5GB")
    assert open_warehouse(load_settings()).memory_limit == "1.5GB"
    monkeypatch.setenv("HYDRA_WAREHOUSE__MEMORY_LIMIT", "512")
    with pytest.raises(ConfigError, match=r"warehouse\.memory_limit"):
        load_settings()


def test_the_readme_configuration_example_loads() -> None:
    """The README's hydra.toml is what a user copies first: it must be a valid configuration (it
    named a setting that does not exist, feeds.binance.interval_s)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    assert example.startswith('mode = "sim"')
    write_toml(example)
    loaded = load_settings()
    assert loaded.feeds.schedules.binance == 300 and loaded.engine.snapshot.daily_bar_sessions == 300
