"""The HTML tearsheet: built from a recorded run, self-contained, and rendered by a real browser."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from adapters.simulator import MarketSimulator
from core.types import Regime
from hydra.backtesting import run_backtest_on_data
from hydra.context import load_context
from hydra.report import REGIME_COLOURS, NoRun, Report, build_report, load_report_data, price_panels
from hydra.simulation import run_simulation

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHARTS = ("equity", "regimes", "pnl_by_strategy", "pnl_by_regime")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    home = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        for name, value in {"WARMUP_SESSIONS": "1", "DAYS": "0.5", "CYCLE_MINUTES": "30"}.items():
            patch.setenv(f"HYDRA_SIM__{name}", value)
        patch.setenv("HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES", "2")
        context = load_context()
        run = run_simulation(context)
        return build_report(load_report_data(context.warehouse, context.settings, run.run_id), home / "reports")


@pytest.mark.slow
def test_the_report_is_one_self_contained_file_with_its_charts_tables_and_pngs(report: Report) -> None:
    page = report.html.read_text(encoding="utf-8")
    assert all(f'id="chart-{name}"' in page for name in CHARTS)
    assert "https://" not in page.split("<body>", 1)[1]  # nothing to fetch: plotly.js is inlined in the head
    assert "Performance by strategy, regime and both" in page and "Risk rejections" in page
    equity = report.data.equity
    assert equity.height > 0 and report.data.regimes.height == equity.height
    assert [path.read_bytes()[:8] for path in report.charts] == [b"\x89PNG\r\n\x1a\n"] * 2


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's package)")
def test_a_headless_browser_renders_every_chart(report: Report, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    shown = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=15000",
            "--dump-dom",
            report.html.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    dom = shown.stdout
    (tmp_path / "rendered.html").write_text(dom, encoding="utf-8")
    # plotly.js replaces each chart's empty div with SVG layers once it has drawn it.
    for name in CHARTS:
        start = dom.index(f'id="chart-{name}"')
        assert 'class="main-svg"' in dom[start : start + 20_000], name
    assert "Uncaught" not in shown.stderr  # the page's console: a script error is logged there


def test_a_run_that_is_not_there_is_named(warehouse: object) -> None:
    context = load_context()
    from warehouse.migrate import migrate

    migrate(context.warehouse)
    with pytest.raises(NoRun, match="no run 'nope'"):
        load_report_data(context.warehouse, context.settings, "nope")


def test_every_regime_has_a_colour_and_every_colour_a_regime() -> None:
    assert set(REGIME_COLOURS) == set(Regime)
    assert len(set(REGIME_COLOURS.values())) == len(Regime)


@pytest.mark.slow
def test_a_file_backtest_s_report_draws_the_file_s_prices_once_its_scratch_warehouse_is_gone() -> None:
    context = load_context()
    epoch = datetime(2026, 3, 2, tzinfo=UTC)
    simulator = MarketSimulator(seed=7, epoch=epoch, watchlist=["SPY", "QQQ"])
    generated = simulator.generate(epoch, epoch + timedelta(days=2))
    minute = generated["bars"].filter(pl.col("timeframe") == "1Min")
    minute.select("symbol", "ts_event", "open", "high", "low", "close", "volume").write_csv("mine.csv")
    start = epoch + timedelta(days=1, hours=14, minutes=30)
    end = start + timedelta(hours=2)
    backtest = run_backtest_on_data(context, Path("mine.csv"), start, end)
    backtest.scratch.unlink()  # scratch warehouses are reused or removed: the report must not need it

    prices = load_report_data(context.warehouse, context.settings, backtest.result.run_id).prices
    spy = prices.filter(pl.col("symbol") == "SPY")
    # A close each 15 minutes of the window (both ends included): the file's last in each quarter.
    assert spy["ts_event"].to_list() == [start + timedelta(minutes=15 * i) for i in range(9)]
    file_closes = dict(minute.filter(pl.col("symbol") == "SPY").select("ts_event", "close").iter_rows())
    assert spy["close"].to_list()[:-1] == [file_closes[t + timedelta(minutes=14)] for t in spy["ts_event"][:-1]]
    assert price_panels(prices) == ["SPY"]  # QQQ's prices are kept too; SPY is the reference market
