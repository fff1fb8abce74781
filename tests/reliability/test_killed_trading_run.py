"""A trading run SIGKILLed at each step of a cycle: the next run reconciles, and the warehouse
and the broker end with every order exactly once.

Paper: each cycle runs in a child process against a local Alpaca. The fake Alpaca kills the
child at the chosen step: when its order arrives, before placing it ("before submit"), or right
after placing it, before answering ("after submit, before record"); or it lets the order through
and the child is killed while recording ("mid-record"), the moment its answer has been sent.

Sim: the simulated broker lives in the warehouse with the run, so every step boundary of a sim
cycle can be found and killed at. A harness process imports everything once, then forks one
worker per boundary; a profiler in the worker counts the entries and exits of the cycle's steps
(every public function of hydra.live, hydra.trading, hydra.recording and warehouse.connection,
so every transaction's start and end) and SIGKILLs the worker at the k-th, for every k.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from fake_alpaca import ORDERS, FakeAlpaca
from paper_session import MINUTE, RUN, START
from pytest_httpserver import HTTPServer
from sim_session import RUN as SIM_RUN
from sim_session import sim_cycle
from werkzeug import Request, Response

from adapters.simulator import MarketSimulator
from core.config import Mode
from core.pipeline import reconcile_positions
from hydra.context import load_context
from hydra.live import open_job
from hydra.settings import load_settings, with_overrides
from hydra.sources import SourceContext
from warehouse import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate
from warehouse.sqlfiles import read_sql

TESTS = Path(__file__).resolve().parents[1]
WORKING_STATUSES = ("pending", "new", "accepted", "partially_filled")
ROOT = TESTS.parent
CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from pathlib import Path
    from paper_session import resume_session, step
    from warehouse import Warehouse
    warehouse, url, now = Warehouse(Path(sys.argv[1])), sys.argv[2], datetime.fromisoformat(sys.argv[3])
    print("ready", flush=True)
    step(resume_session(warehouse, url), now)
    print("done", flush=True)
    """
)


def run_cycle(warehouse: Warehouse, url: str, minute: int) -> subprocess.Popen[str]:
    now = START + (30 + minute) * MINUTE
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(warehouse.path), url, now.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])},
    )


@pytest.mark.slow
@pytest.mark.parametrize("step", ["before submit", "after submit, before record", "mid-record"])
def test_each_order_ends_exactly_once_after_a_kill(tmp_path: Path, httpserver_ipv4: HTTPServer, step: str) -> None:
    fake = FakeAlpaca(httpserver_ipv4)
    fake.positions = []
    warehouse = Warehouse(tmp_path / "hydra.duckdb")
    migrate(warehouse)
    url = httpserver_ipv4.url_for("").rstrip("/")
    victim: list[subprocess.Popen[str]] = []
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        victim[0].send_signal(signal.SIGKILL)
        victim[0].wait(timeout=30)

    def on_order(request: Request) -> Response:
        if step == "before submit":
            kill()
            return Response(status=503)  # nobody is listening any more
        answer = fake.place(request)
        if step == "after submit, before record":
            kill()
        else:  # mid-record: the child dies while it writes the answer it is about to receive
            threading.Timer(0.05, kill).start()
        return answer

    fake.script[("POST", ORDERS)].append(on_order)
    victim.append(run_cycle(warehouse, url, 0))
    while not killed.wait(timeout=0.5):
        assert victim[0].poll() is None, "the child ended without sending its order"
    assert victim[0].wait(timeout=30) == -signal.SIGKILL

    for minute in (1, 2):  # the next runs reconcile, and keep trading
        child = run_cycle(warehouse, url, minute)
        assert child.wait(timeout=120) == 0

    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        recorded = con.execute(
            "SELECT client_order_id, count(*) FROM orders WHERE run_id = ? GROUP BY ALL", [RUN]
        ).fetchall()
        statuses = dict(con.execute("SELECT client_order_id, status FROM orders WHERE run_id = ?", [RUN]).fetchall())
    assert all(count == 1 for _, count in recorded)
    posted = [
        request.get_json()["client_order_id"]
        for request, _ in httpserver_ipv4.log
        if request.path == ORDERS and request.method == "POST"
    ]
    assert len(posted) == len(set(posted))  # no order was ever sent twice
    first = min(statuses)  # the killed cycle's order: the earliest decision
    assert set(fake.orders) == set(posted) - ({first} if step == "before submit" else set())
    if step == "before submit":
        assert first not in fake.orders and statuses[first] == "canceled"
    else:
        assert first in fake.orders and statuses[first] == fake.orders[first]["status"]
    assert set(fake.orders) <= set(statuses)  # every order at the broker is in the warehouse


SIM_CYCLE = timedelta(minutes=5)
HARNESS = textwrap.dedent(
    """
    import json, os, shutil, signal, sys, traceback
    from datetime import datetime
    from pathlib import Path
    import hydra.live, hydra.recording, hydra.trading, warehouse.connection
    from hydra.context import load_context
    from sim_session import sim_cycle

    STEPS = {
        Path(module.__file__).resolve().as_posix()
        for module in (hydra.live, hydra.recording, hydra.trading, warehouse.connection)
    }
    base, work, now = Path(sys.argv[1]), Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3])


    def worker(path, kill_at):
        os.environ["HYDRA_WAREHOUSE__PATH"] = str(path)
        steps = []

        def profile(frame, event, arg):
            code = frame.f_code
            if event in ("call", "return") and code.co_filename in STEPS and not code.co_name.startswith(("_", "<")):
                steps.append(f"{event} {code.co_qualname}")
                if len(steps) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

        sys.setprofile(profile)
        sim_cycle(load_context(), now)
        sys.setprofile(None)
        return steps


    def copy(k):
        target = work / f"{k}.duckdb"
        shutil.copy(base, target)
        if Path(f"{base}.wal").exists():
            shutil.copy(f"{base}.wal", f"{target}.wal")
        return target


    def fork(k):
        pid = os.fork()
        if pid == 0:
            try:
                steps = worker(copy(k), k)
                (work / "steps.json").write_text(json.dumps(steps))
                os._exit(0)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
        return os.waitpid(pid, 0)[1]


    assert fork(0) == 0, "the cycle fails without any kill"
    steps = json.loads((work / "steps.json").read_text())
    killed = [
        k for k in range(1, len(steps) + 1)
        if os.WIFSIGNALED(status := fork(k)) and os.WTERMSIG(status) == signal.SIGKILL
    ]
    print(json.dumps({"steps": steps, "killed": killed}))
    """
)


def context_on(path: Path) -> SourceContext:
    return load_context(with_overrides(load_settings(), {"warehouse.path": path}))


@pytest.mark.slow
def test_a_sim_cycle_killed_at_every_step_boundary_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_ENGINE__REGIME__OBSERVATION_CYCLES", "0")
    context = context_on(tmp_path / "hydra.duckdb")
    migrate(context.warehouse)
    history = context.settings.sim.start
    start = history + timedelta(days=7, hours=14, minutes=30)
    simulator = MarketSimulator(seed=3, epoch=history, watchlist=context.settings.engine.watchlist)
    day = timedelta(days=1)
    moment = history
    while moment < start + day:
        upsert(context.warehouse, simulator.generate(moment, moment + day))
        moment += day

    # The cycle to kill: the first that both collects fills and sends orders, from a copy of
    # the warehouse as the cycle before it left it.
    base = tmp_path / "base.duckdb"
    now = start
    for _ in range(60):
        shutil.copy(context.warehouse.path, base)
        _, record = sim_cycle(context, now)
        if record.fills and record.result.orders:
            break
        now += SIM_CYCLE
    else:
        pytest.fail("no cycle both filled and ordered: the kills would miss those steps")

    work = tmp_path / "killed"
    work.mkdir()
    harness = subprocess.run(
        [sys.executable, "-c", HARNESS, str(base), str(work), now.isoformat()],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])},
    )
    assert harness.returncode == 0, harness.stderr[-3000:]
    found = json.loads(harness.stdout.splitlines()[-1])
    steps = found["steps"]
    assert found["killed"] == list(range(1, len(steps) + 1)), "a worker outlived its kill"
    assert {"call record_cycle", "call record_submissions"} <= set(steps)

    broken = {}
    for k, step in enumerate(steps, start=1):
        problems = recovery_problems(context_on(work / f"{k}.duckdb"), now)
        if problems:
            broken[f"killed at {k} ({step})"] = problems
    assert broken == {}


def recovery_problems(context: SourceContext, killed_at: datetime) -> list[str]:
    """What is wrong once the restarted run has run its next cycle: a cycle that fails, an
    order the warehouse calls working that the broker does not hold open, a symbol left
    unreconciled, P&L that does not add up (sql/checks/pnl_not_reconciled.sql)."""
    now = killed_at + SIM_CYCLE
    try:
        sim_cycle(context, now)
    except Exception as error:
        return [f"the restarted run failed: {error!r}"]
    resumed = open_job(context, Mode.SIM, SIM_RUN)  # what a fresh process finds
    broker = resumed.sim_broker
    assert broker is not None
    with context.warehouse.connect(read_only=True) as con:
        orders = con.execute("SELECT client_order_id, status FROM orders WHERE run_id = ?", [SIM_RUN]).fetchall()
        unreconciled = con.execute(read_sql("checks/pnl_not_reconciled"), {"run_id": SIM_RUN}).fetchall()
    working = {order.client_order_id: order.symbol for order in broker.open_orders()}
    problems = [
        f"order {client_id} is {status} in the warehouse, not working at the broker"
        for client_id, status in sorted(orders)
        if status in WORKING_STATUSES and client_id not in working
    ]
    problems += [
        f"order {cid} is followed, not working at the broker" for cid in resumed.session.tracked if cid not in working
    ]
    held = {position.symbol: position.qty for position in broker.positions()}
    left = reconcile_positions(resumed.session.state, held, {}, frozenset(working.values()), now).differences
    problems += [f"{d.symbol} unreconciled: managed {d.managed_qty:g}, broker {d.broker_qty:g}" for d in left]
    if unreconciled:
        problems.append(f"P&L does not reconcile: {unreconciled}")
    return problems
