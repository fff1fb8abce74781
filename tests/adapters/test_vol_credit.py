"""VIX (CBOE, FRED fallback) and the high-yield spread against a local server serving recorded payloads."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from adapters.feed import FeedBatch, FeedError, FeedUnavailable, MalformedResponse
from adapters.http import HttpClient
from adapters.vol_credit import (
    CBOE_VIX_PATH,
    FRED_OBSERVATIONS_PATH,
    fetch_cboe_vix,
    fetch_fred_series,
    fetch_vix,
    parse_cboe_vix,
    parse_fred_observations,
)
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

DATA = Path(__file__).resolve().parents[1] / "data" / "vol_credit"
INGESTED = datetime(2026, 3, 13, 22, 0, tzinfo=UTC)
USER_AGENT = "HYDRA-test/0.1 (contact: quant@example.com)"
FRED_KEY = "0123456789abcdef0123456789abcdef"
SINCE = date(2026, 3, 5)


def payload(name: str) -> bytes:
    return (DATA / name).read_bytes()


def client(httpserver: HTTPServer, feed: str) -> HttpClient:
    return HttpClient(
        feed=feed,
        base_url=httpserver.url_for("").rstrip("/"),
        user_agent=USER_AGENT,
        backoff_s=0.01,
        max_wait_s=2,
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def values(batch: FeedBatch) -> list[tuple[str, datetime, float, str]]:
    frame = batch.tables["market_series"]
    return [(row["series"], row["ts_event"], row["value"], row["source"]) for row in frame.iter_rows(named=True)]


def fred_query(series_id: str) -> dict[str, str]:
    return {"series_id": series_id, "observation_start": SINCE.isoformat(), "api_key": FRED_KEY, "file_type": "json"}


def serve_cboe(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CBOE_VIX_PATH, method="GET", headers={"User-Agent": USER_AGENT}).respond_with_data(
        payload("VIX_History.csv"), content_type="text/csv"
    )


def serve_fred(httpserver: HTTPServer, series_id: str, fixture: str) -> None:
    httpserver.expect_request(FRED_OBSERVATIONS_PATH, query_string=fred_query(series_id)).respond_with_data(
        payload(fixture), content_type="application/json"
    )


# 16:15 New York: 21:15Z before the 2026-03-08 DST switch, 20:15Z after it.
VIX_SINCE_MARCH_5 = [
    ("VIX", utc("2026-03-05T21:15:00"), 21.37),
    ("VIX", utc("2026-03-06T21:15:00"), 22.84),
    ("VIX", utc("2026-03-09T20:15:00"), 24.12),
    ("VIX", utc("2026-03-10T20:15:00"), 23.05),
    ("VIX", utc("2026-03-12T20:15:00"), 20.96),
]


def test_cboe_closes_from_since_on_at_1615_new_york_with_bad_lines_rejected(httpserver: HTTPServer) -> None:
    serve_cboe(httpserver)

    batch = fetch_cboe_vix(client(httpserver, "cboe"), SINCE, INGESTED)

    assert values(batch) == [(*row, "cboe") for row in VIX_SINCE_MARCH_5]
    assert [(rejected.payload, rejected.reason) for rejected in batch.rejected] == [
        ("03/11/2026,23.100000,23.45", "3 fields, expected 5"),
        ("13/45/2026,20.100000,21.000000,19.900000,20.500000", "DATE '13/45/2026' is not MM/DD/YYYY"),
        ("03/13/2026,20.900000,21.300000,20.100000,-20.450000", "CLOSE '-20.450000' is negative"),
    ]
    assert set(batch.tables["market_series"]["ts_ingested"]) == {INGESTED}


def test_cboe_without_since_keeps_the_whole_history() -> None:
    batch = parse_cboe_vix(payload("VIX_History.csv").decode(), None, INGESTED)

    rows = values(batch)
    assert len(rows) == 2 + 3 + len(VIX_SINCE_MARCH_5)
    assert rows[0] == ("VIX", utc("1990-01-02T21:15:00"), 17.24, "cboe")


def test_the_day_still_trading_is_no_close_until_its_close() -> None:
    # Issue 16: CBOE's file carries today's VIX while it trades; stamped at its 16:15 close it
    # was dated after its ingestion, and quarantined as "ahead" every run until then.
    text = "DATE,OPEN,HIGH,LOW,CLOSE\n03/12/2026,20.1,21.0,19.5,20.4\n03/13/2026,22.0,23.5,21.0,23.1\n"
    closes = {
        ingested: parse_cboe_vix(text, None, ingested).tables["market_series"]["ts_event"].to_list()
        for ingested in (datetime(2026, 3, 13, 15, tzinfo=UTC), datetime(2026, 3, 13, 20, 15, tzinfo=UTC))
    }
    yesterday, today = datetime(2026, 3, 12, 20, 15, tzinfo=UTC), datetime(2026, 3, 13, 20, 15, tzinfo=UTC)
    assert list(closes.values()) == [[yesterday], [yesterday, today]]


def test_cboe_bad_close_numbers_are_rejected() -> None:
    text = "DATE,OPEN,HIGH,LOW,CLOSE\n03/05/2026,1,1,1,n/a\n03/06/2026,1,1,1,inf\n03/09/2026,1,1,1,24.12\n"

    batch = parse_cboe_vix(text, None, INGESTED)

    assert values(batch) == [("VIX", utc("2026-03-09T20:15:00"), 24.12, "cboe")]
    assert [rejected.reason for rejected in batch.rejected] == [
        "CLOSE 'n/a' is not a number",
        "CLOSE 'inf' is not finite",
    ]


def test_cboe_answer_that_is_not_the_csv_is_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CBOE_VIX_PATH).respond_with_data(
        "<html>Service Unavailable</html>", content_type="text/html"
    )

    with pytest.raises(MalformedResponse, match="lacks DATE and CLOSE"):
        fetch_cboe_vix(client(httpserver, "cboe"), SINCE, INGESTED)


def test_cboe_429_with_short_retry_after_is_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(CBOE_VIX_PATH).respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "1"}
    )
    serve_cboe(httpserver)

    batch = fetch_cboe_vix(client(httpserver, "cboe"), SINCE, INGESTED)

    assert len(httpserver.log) == 2
    assert httpserver.log[0][1].status_code == 429
    assert [row[:3] for row in values(batch)] == VIX_SINCE_MARCH_5


def test_fred_vixcls_skips_missing_days_and_stamps_like_cboe(httpserver: HTTPServer) -> None:
    serve_fred(httpserver, "VIXCLS", "fred_vixcls.json")

    batch = fetch_fred_series(client(httpserver, "fred"), FRED_KEY, "VIXCLS", SINCE, INGESTED)

    # 2026-03-11 and 2026-03-13 are "." in the answer: skipped, not rejected.
    assert values(batch) == [(*row, "fred") for row in VIX_SINCE_MARCH_5]
    assert batch.rejected == []


def test_fred_high_yield_spread_is_its_own_series_at_1700_new_york(httpserver: HTTPServer) -> None:
    serve_fred(httpserver, "BAMLH0A0HYM2", "fred_bamlh0a0hym2.json")

    batch = fetch_fred_series(client(httpserver, "fred"), FRED_KEY, "BAMLH0A0HYM2", SINCE, INGESTED)

    assert values(batch) == [
        ("BAMLH0A0HYM2", utc("2026-03-05T22:00:00"), 3.12, "fred"),
        ("BAMLH0A0HYM2", utc("2026-03-06T22:00:00"), 3.18, "fred"),
        ("BAMLH0A0HYM2", utc("2026-03-09T21:00:00"), 3.31, "fred"),
        ("BAMLH0A0HYM2", utc("2026-03-11T21:00:00"), 3.27, "fred"),
    ]


def test_fred_bad_observations_are_rejected_while_good_ones_load() -> None:
    answer = {
        "observations": [
            {"date": "2026-03-05", "value": "21.37"},
            {"date": "03/06/2026", "value": "22.84"},
            {"date": "2026-03-09", "value": "-3.5"},
            {"date": "2026-03-10", "value": "high"},
            {"date": "2026-03-11"},
            "2026-03-12,20.96",
        ]
    }

    batch = parse_fred_observations(answer, "VIXCLS", INGESTED)

    assert values(batch) == [("VIX", utc("2026-03-05T21:15:00"), 21.37, "fred")]
    assert [rejected.reason for rejected in batch.rejected] == [
        "VIXCLS: date '03/06/2026' is not YYYY-MM-DD",
        "VIXCLS: value '-3.5' is negative",
        "VIXCLS: value 'high' is not a number",
        "VIXCLS: value None is not a number",
        "VIXCLS: observation is not an object",
    ]
    assert json.loads(batch.rejected[0].payload) == {"date": "03/06/2026", "value": "22.84"}


def test_fred_error_for_observations_does_not_leak_the_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request(FRED_OBSERVATIONS_PATH).respond_with_json(
        {"error_code": 400, "error_message": "Bad Request.  The series does not exist."}, status=400
    )

    with pytest.raises(FeedError, match="The series does not exist") as raised:
        fetch_fred_series(client(httpserver, "fred"), FRED_KEY, "VIXCLS", SINCE, INGESTED)
    assert FRED_KEY not in str(raised.value)


def test_unknown_fred_series_is_refused_before_any_request(httpserver: HTTPServer) -> None:
    with pytest.raises(ValueError, match="unknown FRED series 'DGS10'"):
        fetch_fred_series(client(httpserver, "fred"), FRED_KEY, "DGS10", SINCE, INGESTED)
    assert httpserver.log == []


def test_cboe_403_falls_back_to_fred(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CBOE_VIX_PATH).respond_with_data("<Error>AccessDenied</Error>", status=403)
    serve_fred(httpserver, "VIXCLS", "fred_vixcls.json")

    batch = fetch_vix(client(httpserver, "cboe"), client(httpserver, "fred"), FRED_KEY, SINCE, INGESTED)

    assert batch.feed == "fred"
    assert values(batch) == [(*row, "fred") for row in VIX_SINCE_MARCH_5]


def test_cboe_success_never_asks_fred(httpserver: HTTPServer) -> None:
    serve_cboe(httpserver)

    batch = fetch_vix(client(httpserver, "cboe"), client(httpserver, "fred"), FRED_KEY, SINCE, INGESTED)

    assert batch.feed == "cboe"
    assert [entry[0].path for entry in httpserver.log] == [CBOE_VIX_PATH]


@pytest.mark.parametrize("with_fred_client", [True, False])
def test_cboe_failure_without_fred_key_or_client_is_raised(httpserver: HTTPServer, with_fred_client: bool) -> None:
    httpserver.expect_request(CBOE_VIX_PATH).respond_with_data("<Error>AccessDenied</Error>", status=403)
    fred = client(httpserver, "fred") if with_fred_client else None
    key = None if with_fred_client else FRED_KEY

    with pytest.raises(FeedUnavailable, match="HTTP 403"):
        fetch_vix(client(httpserver, "cboe"), fred, key, SINCE, INGESTED)
    assert [entry[0].path for entry in httpserver.log] == [CBOE_VIX_PATH]


def test_loading_twice_changes_nothing_and_both_vix_sources_share_a_day(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    migrate(wh)
    cboe = parse_cboe_vix(payload("VIX_History.csv").decode(), None, INGESTED)
    fred_vix = parse_fred_observations(json.loads(payload("fred_vixcls.json")), "VIXCLS", INGESTED)
    spread = parse_fred_observations(json.loads(payload("fred_bamlh0a0hym2.json")), "BAMLH0A0HYM2", INGESTED)

    counts = []
    for _ in range(2):
        for batch in (cboe, fred_vix, spread):
            upsert(wh, batch.tables)
        with wh.connect() as con:
            counts.append(con.execute("SELECT series, count(*) FROM market_series GROUP BY 1 ORDER BY 1").fetchall())

    # FRED's VIX days are all CBOE days too: same instant, so they replace rather than add rows.
    assert counts[0] == counts[1] == [("BAMLH0A0HYM2", 4), ("VIX", 10)]
