"""The HTML tearsheet: built from a recorded run, self-contained, and rendered by a real browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hydra.context import load_context
from hydra.report import NoRun, Report, build_report, load_report_data
from hydra.simulation import run_simulation

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHARTS = ("equity", "regimes", "pnl_by_strategy", "pnl_by_regime")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    home = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        for name, value in {"WARMUP_DAYS": "1", "DAYS": "0.5", "CYCLE_MINUTES": "30"}.items():
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
