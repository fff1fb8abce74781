"""The regime rules on real market history: labelled episodes of the S&P 500, 1990-2022.

    python -m bench.regime_episodes     # prints the confusion table; writes bench/results/regime_episodes.md

Each session of the S&P 500's real daily closes (tests/data/real, with the real VIX where it
exists) is named by the rules of core/regime.py, exactly as a live cycle names the session it
decides in, and compared with tests/data/real/regime_episodes.csv: for each labelled episode,
how many of its sessions got each regime, and the share that got one the episode accepts.
tests/core/test_regime_real.py asserts the hit rates; docs/regime_validation.md publishes the table.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from core.calendar import Sessions, nyse_sessions
from core.config import RegimeConfig
from core.features import FloatArray, SessionSeries, compute_features
from core.regime import NO_REGIME, REGIMES, classify, confirmed
from core.types import Regime

REAL_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "real"
RESULTS = Path(__file__).resolve().parent / "results" / "regime_episodes.md"


@dataclass(frozen=True)
class Episode:
    start: date
    end: date
    name: str
    accepted: frozenset[Regime]


@dataclass(frozen=True)
class EpisodeResult:
    episode: Episode
    counts: dict[Regime | None, int]  # sessions per regime (None: no regime)

    @property
    def sessions(self) -> int:
        return sum(self.counts.values())

    @property
    def hits(self) -> int:
        return sum(count for regime, count in self.counts.items() if regime in self.episode.accepted)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.sessions


def episodes() -> list[Episode]:
    frame = pl.read_csv(REAL_DATA / "regime_episodes.csv", try_parse_dates=True)
    return [
        Episode(row["start"], row["end"], row["name"], frozenset(Regime(r) for r in row["accepted"].split("|")))
        for row in frame.iter_rows(named=True)
    ]


def sp500_sessions() -> tuple[list[date], FloatArray]:
    """The S&P 500's sessions (dates) and their regime features, with the real VIX where it exists."""
    closes = pl.read_csv(REAL_DATA / "sp500_index_daily.csv.gz", try_parse_dates=True)
    vix = pl.read_csv(REAL_DATA / "vix_daily.csv.gz", try_parse_dates=True, schema_overrides={"vix": pl.Float64})
    days: list[date] = closes.get_column("date").to_list()
    sessions = nyse_sessions(days[0], days[-1])
    index = session_indices(sessions, days)
    fear = closes.join(vix, on="date", how="left").get_column("vix").to_numpy()
    series = SessionSeries(sessions=index, close=closes.get_column("close").to_numpy(), fear_level=fear)
    return days, compute_features(series)


def session_indices(sessions: Sessions, days: Sequence[date]) -> np.ndarray:
    found = [sessions.session_on(day) for day in days]
    missing = [day for day, index in zip(days, found, strict=True) if index is None]
    if missing:
        raise ValueError(f"{len(missing)} dates are not NYSE sessions, e.g. {missing[0].isoformat()}")
    return np.array(found, dtype=np.int64)


def evaluate(config: RegimeConfig | None = None) -> list[EpisodeResult]:
    """Each episode's sessions by the regime in force (confirmed, as a live cycle reads it)."""
    config = config or RegimeConfig()
    days, features = sp500_sessions()
    codes = confirmed(classify(features, config.thresholds), config.confirm_sessions)
    dates = np.array(days, dtype="datetime64[D]")
    results = []
    for episode in episodes():
        inside = (dates >= np.datetime64(episode.start)) & (dates <= np.datetime64(episode.end))
        counts: dict[Regime | None, int] = {}
        for code in codes[inside].tolist():
            regime = None if code == NO_REGIME else REGIMES[code]
            counts[regime] = counts.get(regime, 0) + 1
        results.append(EpisodeResult(episode, counts))
    return results


def confusion_table(results: Sequence[EpisodeResult]) -> str:
    header = ["episode", "sessions", *(regime.value for regime in REGIMES), "accepted", "hit rate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * len(REGIMES) + "---|---:|"]
    for result in results:
        episode = result.episode
        accepted = ", ".join(r.value for r in REGIMES if r in episode.accepted)
        cells = [
            f"{episode.name} ({episode.start:%Y-%m-%d}..{episode.end:%Y-%m-%d})",
            str(result.sessions),
            *(str(result.counts.get(regime, 0) or "") for regime in REGIMES),
            accepted,
            f"{result.hit_rate:.0%}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    total = sum(r.sessions for r in results)
    hits = sum(r.hits for r in results)
    lines.append(f"| all episodes | {total} |" + " |" * len(REGIMES) + f" | {hits / total:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    table = confusion_table(evaluate())
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# The regime rules on labelled S&P 500 episodes\n\n"
        "Sessions of each episode by the regime the rules named (`python -m bench.regime_episodes`).\n\n"
        + table
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
