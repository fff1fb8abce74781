"""A trading run SIGKILLed at each step of a cycle: the next run reconciles, and the warehouse
and the broker end with every order exactly once.

Each cycle runs in a child process against a local Alpaca. The fake Alpaca kills the child at
the chosen step: when its order arrives, before placing it ("before submit"), or right after
placing it, before answering ("after submit, before record"); or it lets the order through and
the child is killed while recording ("mid-record"), the moment its answer has been sent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest
from fake_alpaca import ORDERS, FakeAlpaca
from paper_session import MINUTE, RUN, START
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from warehouse import Warehouse
from warehouse.migrate import migrate

TESTS = Path(__file__).resolve().parents[1]
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
