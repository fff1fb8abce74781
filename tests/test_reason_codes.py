"""Reason codes are a closed set, every one documented where users look them up."""

from __future__ import annotations

import re
from pathlib import Path

from core.types import Reason, ReasonCode

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_documents_exactly_the_codes() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Reason codes") :]
    table = section[: section.index("\n\n", section.index("| code | meaning |"))]
    documented = re.findall(r"^\| `([a-z_]+)` \| .+ \|$", table, flags=re.MULTILINE)
    assert documented == [code.value for code in ReasonCode]


def test_a_reason_reads_as_its_code_then_its_detail() -> None:
    assert str(Reason(ReasonCode.MAX_POSITION)) == "max_position"
    assert (
        str(Reason(ReasonCode.COOLDOWN, "until 2026-03-02T18:30:00+00:00"))
        == "cooldown: until 2026-03-02T18:30:00+00:00"
    )
