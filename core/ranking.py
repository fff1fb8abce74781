"""Rank trade proposals by expected value.

Public API
----------
``expected_value(proposal, strategy_weight) -> float``
    ``confidence x reward:risk x strategy_weight``.

``RankedProposal(proposal, strategy_weight, expected_value, rank)``
    ``rank`` is 1-based: 1 is the best proposal of the cycle.

``rank_proposals(proposals, weights, default_weight=1.0) -> tuple[RankedProposal, ...]``
    Descending expected value; ties broken by (strategy, symbol), then by proposal id
    so the order never depends on the order the strategies ran in. A strategy without
    a weight yet gets ``default_weight`` (the adaptation's neutral base weight).

The risk manager consumes proposals in this order, so a better proposal uses the
limits before a worse one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.types import TradeProposal


@dataclass(frozen=True, slots=True)
class RankedProposal:
    proposal: TradeProposal
    strategy_weight: float
    expected_value: float
    rank: int


def expected_value(proposal: TradeProposal, strategy_weight: float) -> float:
    return proposal.confidence * proposal.reward_risk * strategy_weight


def rank_proposals(
    proposals: Iterable[TradeProposal],
    weights: Mapping[str, float],
    default_weight: float = 1.0,
) -> tuple[RankedProposal, ...]:
    scored = []
    for proposal in proposals:
        weight = weights.get(proposal.strategy, default_weight)
        scored.append((proposal, weight, expected_value(proposal, weight)))
    scored.sort(key=lambda item: (-item[2], item[0].strategy, item[0].symbol, item[0].proposal_id))
    return tuple(
        RankedProposal(proposal=proposal, strategy_weight=weight, expected_value=value, rank=rank)
        for rank, (proposal, weight, value) in enumerate(scored, start=1)
    )
