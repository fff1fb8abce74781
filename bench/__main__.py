"""Run every benchmark module in bench/ (or those named): `python -m bench [NAME ...] [-- ARG ...]`.

A benchmark is any module here, not starting with an underscore, that exposes `main(argv) -> int`;
new ones are picked up without being registered. Arguments after `--` go to every selected
benchmark. One benchmark failing does not stop the others; the exit code is the worst of theirs.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

Main = Callable[[list[str]], int]


def discover() -> dict[str, Main]:
    """Benchmark name -> its main, in name order."""
    found: dict[str, Main] = {}
    for module_info in sorted(pkgutil.iter_modules([str(PACKAGE_DIR)]), key=lambda info: info.name):
        if module_info.name.startswith("_") or module_info.ispkg:
            continue
        module = importlib.import_module(f"{__package__ or 'bench'}.{module_info.name}")
        entry = getattr(module, "main", None)
        if callable(entry):
            found[module_info.name] = entry
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    passed_on: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, passed_on = args[:split], args[split + 1 :]
    available = discover()
    unknown = [name for name in args if name not in available]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    worst = 0
    for name in args or list(available):
        print(f"== bench.{name}", flush=True)
        try:
            code = available[name](list(passed_on))
        except SystemExit as stop:  # argparse's way out: --help (0) or bad arguments (2)
            code = stop.code if isinstance(stop.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 1
        if code:
            print(f"bench.{name} exited with {code}", file=sys.stderr)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
