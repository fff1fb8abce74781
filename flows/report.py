"""The daily report flow: the newest run's tearsheet, and its figures as Prefect artifacts."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from hydra.context import load_context
from hydra.report import build_report, load_report_data
from hydra.runs import newest_settled_run


@flow(name="report")
def daily_report(run_id: str | None = None) -> dict[str, Any]:
    """Build the run's HTML report (default: the newest run) and publish it to the Prefect UI."""
    context = load_context()
    chosen = run_id or newest_settled_run(context.warehouse)[0]
    if chosen is None:
        return {"status": "skipped", "reason": "the warehouse holds no runs yet"}
    data = load_report_data(context.warehouse, context.settings, chosen)
    built = build_report(data, context.settings.warehouse.path.parent / "reports")
    strategies = data.performance.filter(data.performance["grouping"] == "strategy")
    ratios = data.ratios.to_dicts()
    summary = ratios[0] if ratios else {}
    create_markdown_artifact(
        key="report-summary",
        markdown="\n".join(
            [
                f"# HYDRA run {chosen}",
                "",
                *(f"- **{name}**: {value}" for name, value in summary.items()),
                "",
                f"Report: `{built.html.resolve()}`",
            ]
        ),
    )
    create_table_artifact(
        key="report-strategies",
        table=strategies.drop("grouping").to_dicts() or [{"strategy": "(no closed trades)"}],
    )
    create_link_artifact(key="report-html", link=built.html.resolve().as_uri(), link_text=f"tearsheet of {chosen}")
    return {"status": "built", "run_id": chosen, "html": str(built.html), "charts": [str(c) for c in built.charts]}
