"""What several benchmarks record the same way: the machine they ran on, and their report files."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

T = TypeVar("T")


@dataclass(frozen=True)
class Timed:
    wall_s: float
    cpu_s: float  # process CPU over all threads: above wall_s means the stage ran in parallel
    load_1m: float


def timed(call: Callable[[], T]) -> tuple[T, Timed]:
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    return value, Timed(time.perf_counter() - wall, time.process_time() - cpu, load)


def machine_info(packages: Iterable[str]) -> dict[str, Any]:
    """Cores, CPU, memory, platform and the installed version of each package (None when absent)."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "polars_threads": pl.thread_pool_size(),
        "packages": versions,
    }


def run_machine(packages: Iterable[str], load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """The machine of a finished run: its description, the load around the run, peak memory."""
    return {
        **machine_info(packages),
        "load_avg_start": list(load_at_start),
        "load_avg_end": list(os.getloadavg()),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float | None:
    """This process's resident memory now, where /proc tells it (Linux)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.processor() or None
    for line in cpuinfo.read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def write_files(out: Path, texts: Mapping[str, str]) -> list[Path]:
    """Each named file in `out`, replaced whole (a .tmp first) so none is ever half-written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        path = out / name
        temporary = path.with_name(name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        written.append(path)
    return written
