"""A run's tearsheet: one self-contained HTML file (plotly.js inlined once, so it opens with no
network) and PNG charts beside it, built from the warehouse's analytics views.

Every figure comes from a query in sql/report/, so what the report shows is what anyone can ask
the warehouse. The same content is published as Prefect artifacts by the daily report flow.

Prices: a run that replayed bars kept elsewhere (a backtest of a user's file, replayed in a
scratch warehouse) takes its markets' closes with it (`keep_run_prices`, table run_prices); the
report draws those, else the warehouse's own bars over the run's window. The price panels are the
reference markets the run has prices for, else every market it has.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from core.types import Regime
from hydra.settings import HydraSettings
from warehouse import Warehouse
from warehouse.connection import in_transaction
from warehouse.load import upsert_rows
from warehouse.read import query_frame

REFERENCE_SYMBOLS = ["SPY", "BTC/USD"]
REGIME_COLOURS: dict[Regime, str] = {
    Regime.TRENDING_UP: "#2ca02c",
    Regime.TRENDING_DOWN: "#d62728",
    Regime.MEAN_REVERTING: "#1f77b4",
    Regime.HIGH_VOL: "#ff7f0e",
    Regime.CRASH: "#7f0000",
    Regime.RECOVERY: "#9467bd",
}
UNKNOWN_REGIME_COLOUR = "#777"


class NoRun(Exception):
    """The run asked for is not in the warehouse (or none is)."""


@dataclass(frozen=True)
class ReportData:
    run: dict[str, Any]
    strategies: pl.DataFrame  # which could run on the run's data, and how often each decided
    equity: pl.DataFrame
    regimes: pl.DataFrame
    prices: pl.DataFrame
    performance: pl.DataFrame
    ratios: pl.DataFrame
    rejections: pl.DataFrame
    slippage: pl.DataFrame
    kill_switch: pl.DataFrame
    max_total_exposure: float


@dataclass(frozen=True)
class Report:
    html: Path
    charts: list[Path]
    data: ReportData


def load_report_data(warehouse: Warehouse, settings: HydraSettings, run_id: str) -> ReportData:
    with warehouse.connect(read_only=True) as con:
        info = query_frame(con, "report/run_info", {"run_id": run_id})
        if info.is_empty():
            raise NoRun(f"no run {run_id!r} in {warehouse.path}")
        run = info.row(0, named=True)
        start = run["first_cycle"] or run["window_start"]
        end = run["last_cycle"] or run["window_end"]
        by_run: dict[str, object] = {"run_id": run_id}
        prices = query_frame(con, "report/run_prices", by_run)
        if prices.is_empty() and start is not None and end is not None:
            prices = query_frame(
                con, "report/reference_prices", {"symbols": REFERENCE_SYMBOLS, "start": start, "end": end}
            )
        return ReportData(
            run=run,
            strategies=query_frame(con, "report/run_strategies", by_run),
            equity=query_frame(con, "report/equity_curve", by_run),
            regimes=query_frame(con, "report/regime_timeline", by_run),
            prices=prices,
            performance=query_frame(con, "report/performance", by_run),
            ratios=query_frame(con, "report/run_ratios", by_run),
            rejections=query_frame(con, "report/risk_rejections", by_run),
            slippage=query_frame(con, "report/slippage_by_strategy", by_run),
            kill_switch=query_frame(con, "report/kill_switch_history", by_run),
            max_total_exposure=settings.risk.limits.max_total_exposure,
        )


def keep_run_prices(warehouse: Warehouse, run_id: str, start: datetime, end: datetime, recorded_at: datetime) -> int:
    """Keep the closes of every market with bars in `warehouse` over [start, end] with the run, so
    its report draws them wherever the run's rows are copied; returns the rows kept."""
    window: dict[str, object] = {"start": start, "end": end}
    with warehouse.connect() as con, in_transaction(con):
        symbols = query_frame(con, "read/bar_symbols_between", window).get_column("symbol").to_list()
        prices = query_frame(con, "report/reference_prices", {"symbols": symbols, **window})
        rows = prices.select(pl.lit(run_id).alias("run_id"), pl.all(), pl.lit(recorded_at).alias("ts_ingested"))
        return upsert_rows(con, "run_prices", rows)


def regime_colour(name: str) -> str:
    """The colour of a regime as the warehouse stores it (its Regime's value)."""
    try:
        return REGIME_COLOURS[Regime(name)]
    except ValueError:  # a name no Regime has any more, in an old run's rows
        return UNKNOWN_REGIME_COLOUR


def price_panels(prices: pl.DataFrame) -> list[str]:
    """The markets the regime timeline is drawn under: the reference ones the run has prices for,
    else all it has (a backtest of a file of other symbols)."""
    present = set(prices["symbol"].to_list()) if not prices.is_empty() else set()
    return [symbol for symbol in REFERENCE_SYMBOLS if symbol in present] or sorted(present)


def build_report(data: ReportData, out: Path) -> Report:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs
    from plotly.subplots import make_subplots

    out.mkdir(parents=True, exist_ok=True)
    run_id = data.run["run_id"]
    figures: list[tuple[str, Any]] = []

    curve = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.5, 0.25, 0.25], vertical_spacing=0.04)
    equity = data.equity
    curve.add_trace(go.Scatter(x=equity["ts_event"], y=equity["equity"], name="equity"), row=1, col=1)
    curve.add_trace(go.Scatter(x=equity["ts_event"], y=equity["peak_equity"], name="peak", line={"dash": "dot"}), 1, 1)
    curve.add_trace(go.Scatter(x=equity["ts_event"], y=-equity["drawdown"], name="drawdown", fill="tozeroy"), 2, 1)
    curve.add_trace(go.Scatter(x=equity["ts_event"], y=equity["exposure"], name="gross exposure"), row=3, col=1)
    curve.add_hline(y=data.max_total_exposure, line={"dash": "dash", "color": "red"}, row=3, col=1)
    curve.update_layout(title="Equity, drawdown and exposure against its limit", height=650)
    figures.append(("equity", curve))

    panels = price_panels(data.prices)
    markets = make_subplots(rows=len(panels) + 1, cols=1, shared_xaxes=True, vertical_spacing=0.04)
    for row, symbol in enumerate(panels, start=1):
        prices = data.prices.filter(pl.col("symbol") == symbol)
        markets.add_trace(go.Scatter(x=prices["ts_event"], y=prices["close"], name=symbol), row=row, col=1)
    for regime, rows in data.regimes.group_by("regime", maintain_order=True) if not data.regimes.is_empty() else []:
        name = str(regime[0])
        markets.add_trace(
            go.Scatter(
                x=rows["ts_event"],
                y=[name] * rows.height,
                mode="markers",
                marker={"color": regime_colour(name), "size": 6},
                name=name,
            ),
            row=len(panels) + 1,
            col=1,
        )
    markets.update_layout(title=f"Regime timeline under {', '.join(panels) or 'no prices'}", height=550)
    figures.append(("regimes", markets))

    for grouping, title in (("strategy", "P&L by strategy"), ("regime", "P&L by regime")):
        rows = data.performance.filter(pl.col("grouping") == grouping)
        bars = go.Figure(go.Bar(x=rows[grouping].to_list(), y=rows["total_pnl"].to_list()))
        bars.update_layout(title=title, height=350)
        figures.append((f"pnl_by_{grouping}", bars))

    charts = _pngs(data, out, run_id)
    body = [
        f"<h1>HYDRA run {html.escape(run_id)}</h1>",
        "<h2>Strategies: could they run on this data?</h2>",
        _table(data.strategies),
        _table(pl.DataFrame([{k: v for k, v in data.run.items()}])),
        "<h2>Risk-adjusted</h2>",
        _table(data.ratios),
        *(figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{name}") for name, figure in figures),
        "<h2>Performance by strategy, regime and both</h2>",
        _table(data.performance),
        "<h2>Risk rejections</h2>",
        _table(data.rejections),
        "<h2>Slippage</h2>",
        _table(data.slippage),
        "<h2>Kill switch and cooldowns</h2>",
        _table(data.kill_switch),
    ]
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>HYDRA {html.escape(run_id)}</title><script>{get_plotlyjs()}</script>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    target = out / f"{_file_name(run_id)}.html"
    target.write_text(page, encoding="utf-8")
    return Report(target, charts, data)


def _pngs(data: ReportData, out: Path, run_id: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # no display: the charts are files
    import matplotlib.pyplot as plt

    paths = []
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    if not data.equity.is_empty():
        top.plot(data.equity["ts_event"].to_list(), data.equity["equity"].to_list(), label="equity")
        bottom.fill_between(data.equity["ts_event"].to_list(), [-d for d in data.equity["drawdown"].to_list()], 0)
    top.set_title(f"{run_id}: equity")
    bottom.set_title("drawdown")
    path = out / f"{_file_name(run_id)}-equity.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    paths.append(path)
    strategies = data.performance.filter(pl.col("grouping") == "strategy")
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.bar(strategies["strategy"].to_list(), strategies["total_pnl"].to_list())
    axis.set_title(f"{run_id}: P&L by strategy")
    figure.autofmt_xdate()
    path = out / f"{_file_name(run_id)}-pnl-by-strategy.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    paths.append(path)
    return paths


def _table(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(column)}</th>" for column in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(value))}</td>" for value in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _file_name(run_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
