"""BLS, FOMC and FRED release calendars against a local server serving recorded payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from adapters.feed import FeedBatch, FeedError, FeedUnavailable, MalformedResponse
from adapters.http import HttpClient
from adapters.macro_calendar import (
    BLS_ICS_PATH,
    FOMC_CALENDAR_PATH,
    FRED_RELEASE_DATES_PATH,
    fetch_bls_calendar,
    fetch_fomc_calendar,
    fetch_fred_release_dates,
    parse_bls_ics,
    parse_fomc_html,
    parse_fred_release_dates,
)
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

DATA = Path(__file__).resolve().parents[1] / "data" / "macro_calendar"
INGESTED = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
USER_AGENT = "HYDRA-test/0.1 (contact: quant@example.com)"
FRED_KEY = "0123456789abcdef0123456789abcdef"


def payload(name: str) -> bytes:
    return (DATA / name).read_bytes()


def crlf(raw: bytes) -> bytes:
    """The fixture with CRLF line ends whatever a checkout did to them, as BLS sends it."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


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


def events(batch: FeedBatch) -> dict[tuple[str, datetime], dict[str, object]]:
    frame = batch.tables["economic_events"]
    return {(row["event_type"], row["ts_event"]): row for row in frame.iter_rows(named=True)}


def fred_query(release_id: int) -> dict[str, str]:
    return {
        "release_id": str(release_id),
        "include_release_dates_with_no_data": "true",
        "api_key": FRED_KEY,
        "file_type": "json",
    }


# --- BLS --------------------------------------------------------------------------------


def test_bls_maps_nfp_and_cpi_to_exact_utc_across_both_dst_switches(httpserver: HTTPServer) -> None:
    httpserver.expect_request(BLS_ICS_PATH, method="GET", headers={"User-Agent": USER_AGENT}).respond_with_data(
        crlf(payload("bls.ics")), content_type="text/calendar"
    )

    found = events(fetch_bls_calendar(client(httpserver, "bls"), INGESTED))

    # 08:30 New York is 13:30Z in EST and 12:30Z in EDT; DST began 2026-03-08 and ended 2026-11-01.
    expected = {
        ("NFP", utc("2026-03-06T13:30:00")): "Employment Situation for February 2026",
        ("CPI", utc("2026-03-11T12:30:00")): "Consumer Price Index for February 2026",
        ("NFP", utc("2026-08-07T12:30:00")): "Employment Situation for July 2026",
        ("CPI", utc("2026-08-12T12:30:00")): "Consumer Price Index for July 2026",
        ("CPI", utc("2026-10-14T12:30:00")): "Consumer Price Index for September 2026",
        ("NFP", utc("2026-11-06T13:30:00")): "Employment Situation for October 2026",
    }
    for key, title in expected.items():
        assert found[key]["title"] == title
        assert found[key]["importance"] == 3
        assert found[key]["all_day"] is False
        assert found[key]["source"] == "bls"
    assert sorted(key for key in found if key[0] in {"NFP", "CPI"}) == sorted(expected)


def test_bls_ranks_ppi_and_jolts_above_the_long_tail_and_unfolds_lines() -> None:
    batch = parse_bls_ics(crlf(payload("bls.ics")).decode(), INGESTED)
    found = events(batch)

    assert batch.rejected == []
    assert found[("PPI", utc("2026-03-12T12:30:00"))]["importance"] == 2
    # The JOLTS summary is folded over two lines in the file, and 10:00 is 14:00Z after the March switch.
    jolts = found[("JOLTS", utc("2026-03-10T14:00:00"))]
    assert jolts["title"] == "Job Openings and Labor Turnover Survey for January 2026"
    assert jolts["importance"] == 2
    # A folded summary with an escaped comma keeps its comma and loses the fold.
    real_earnings = "Real Earnings, All Employees and Production and Nonsupervisory Employees"
    row = found[(real_earnings, utc("2026-08-12T12:30:00"))]
    assert row["title"] == real_earnings + " for July 2026"
    assert row["importance"] == 1


def test_bls_all_day_events_sit_at_new_york_midnight() -> None:
    found = events(parse_bls_ics(payload("bls.ics").decode(), INGESTED))

    summer = found[("County Employment and Wages", utc("2026-09-03T04:00:00"))]
    winter = found[("Employee Benefits in the United States", utc("2026-12-03T05:00:00"))]
    assert summer["all_day"] is True and winter["all_day"] is True
    assert summer["importance"] == 1


def test_bls_line_endings_do_not_matter_and_cancelled_releases_are_not_scheduled() -> None:
    with_crlf = parse_bls_ics(crlf(payload("bls.ics")).decode(), INGESTED)
    with_lf = parse_bls_ics(crlf(payload("bls.ics")).decode().replace("\r\n", "\n"), INGESTED)

    assert with_crlf.tables["economic_events"].equals(with_lf.tables["economic_events"])
    assert with_crlf.tables["economic_events"].height == 11
    titles = with_crlf.tables["economic_events"]["title"].to_list()
    assert not any(title.startswith("Employer Costs") for title in titles)


def test_bls_bad_events_are_rejected_with_their_reason_while_good_ones_load() -> None:
    batch = parse_bls_ics(crlf(payload("bls_bad_events.ics")).decode(), INGESTED)

    assert list(events(batch)) == [("NFP", utc("2026-09-04T12:30:00"))]
    reasons = [rejected.reason for rejected in batch.rejected]
    assert reasons == [
        "DTSTART '2026-09-11 08:30' is not an iCalendar date-time (YYYYMMDDTHHMMSS)",
        "DTSTART TZID 'Mars/Olympus_Mons' is not a known time zone",
        "VEVENT has no SUMMARY",
        "DTSTART '20260231': day is out of range for month",
        "VEVENT not closed before the end of the file (truncated download?)",
    ]
    assert "UID:cpi-bad-date@bls.gov" in batch.rejected[0].payload
    assert batch.rejected[-1].payload.startswith("BEGIN:VEVENT")


def test_bls_empty_calendar_is_an_empty_batch(httpserver: HTTPServer) -> None:
    httpserver.expect_request(BLS_ICS_PATH).respond_with_data(
        crlf(payload("bls_empty.ics")), content_type="text/calendar"
    )

    batch = fetch_bls_calendar(client(httpserver, "bls"), INGESTED)

    assert batch.row_count == 0
    assert batch.rejected == []
    assert batch.tables["economic_events"].columns == [
        "source",
        "event_type",
        "ts_event",
        "title",
        "importance",
        "all_day",
        "ts_ingested",
    ]


def test_bls_block_page_instead_of_calendar_is_malformed(httpserver: HTTPServer) -> None:
    block_page = "<html><head><title>Access Denied</title></head><body>Access Denied</body></html>"
    httpserver.expect_request(BLS_ICS_PATH).respond_with_data(block_page, content_type="text/html")

    with pytest.raises(MalformedResponse) as raised:
        fetch_bls_calendar(client(httpserver, "bls"), INGESTED)
    assert raised.value.payload == block_page


def test_bls_403_is_feed_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request(BLS_ICS_PATH).respond_with_data("Forbidden", status=403)

    with pytest.raises(FeedUnavailable):
        fetch_bls_calendar(client(httpserver, "bls"), INGESTED)


def test_parsers_refuse_a_naive_ingestion_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_bls_ics(payload("bls_empty.ics").decode(), datetime(2026, 8, 1, 12, 0))  # noqa: DTZ001


# --- FOMC -------------------------------------------------------------------------------


def test_fomc_statement_times_from_every_year_panel(httpserver: HTTPServer) -> None:
    httpserver.expect_request(FOMC_CALENDAR_PATH, headers={"User-Agent": USER_AGENT}).respond_with_data(
        payload("fomccalendars.htm"), content_type="text/html; charset=UTF-8"
    )

    batch = fetch_fomc_calendar(client(httpserver, "fomc"), INGESTED)
    frame = batch.tables["economic_events"]

    assert batch.rejected == []
    assert set(frame["event_type"]) == {"FOMC"} and set(frame["source"]) == {"fomc"}
    assert set(frame["importance"]) == {3} and set(frame["all_day"]) == {False}
    # 14:00 New York: 19:00Z in winter, 18:00Z in summer; the notation vote of 2025-08-22 is no meeting.
    assert frame["ts_event"].to_list() == [
        utc("2026-01-28T19:00:00"),
        utc("2026-03-18T18:00:00"),
        utc("2026-04-29T18:00:00"),
        utc("2026-06-17T18:00:00"),
        utc("2026-07-29T18:00:00"),
        utc("2026-09-16T18:00:00"),
        utc("2026-10-28T18:00:00"),
        utc("2026-12-09T19:00:00"),
        utc("2025-07-30T18:00:00"),
        utc("2025-09-17T18:00:00"),
        utc("2024-03-20T18:00:00"),
        utc("2024-05-01T18:00:00"),
        utc("2024-06-12T18:00:00"),
    ]


def test_fomc_meeting_across_two_months_ends_in_the_second() -> None:
    found = events(parse_fomc_html(payload("fomccalendars.htm").decode(), INGESTED))

    assert found[("FOMC", utc("2024-05-01T18:00:00"))]["title"] == "FOMC statement, meeting 2024-04-30 to 2024-05-01"


def test_fomc_titles_name_the_projection_meetings() -> None:
    frame = parse_fomc_html(payload("fomccalendars.htm").decode(), INGESTED).tables["economic_events"]
    with_projections = frame.filter(pl.col("title").str.ends_with(", with Summary of Economic Projections"))

    assert [moment.date().isoformat() for moment in with_projections["ts_event"]] == [
        "2026-03-18",
        "2026-06-17",
        "2026-09-16",
        "2026-12-09",
        "2025-09-17",
        "2024-03-20",
        "2024-06-12",
    ]
    assert frame.filter(pl.col("ts_event") == utc("2026-01-28T19:00:00"))["title"].item() == (
        "FOMC statement, meeting 2026-01-27 to 2026-01-28"
    )


def test_fomc_unusable_meeting_is_rejected_and_the_rest_load() -> None:
    html = payload("fomccalendars.htm").decode().replace(">27-28</div>", ">27-28 (tentative)</div>", 1)
    html = html.replace("<strong>Apr/May</strong>", "<strong>Apr/Mai</strong>")

    batch = parse_fomc_html(html, INGESTED)

    assert batch.tables["economic_events"].height == 11
    assert [(json.loads(rejected.payload), rejected.reason) for rejected in batch.rejected] == [
        (
            {"year": 2026, "month": "January", "date": "27-28 (tentative)"},
            "meeting date '27-28 (tentative)' is not 'D', 'D-D' or 'D-D*'",
        ),
        ({"year": 2024, "month": "Apr/Mai", "date": "30-1"}, "month 'Apr/Mai' is not one or two month names"),
    ]


def test_fomc_unscheduled_meeting_is_all_day() -> None:
    html = (
        '<div class="panel panel-default"><div class="panel-heading"><h4><a id="1">2020 FOMC Meetings</a></h4></div>'
        '<div class="row fomc-meeting"><div class="fomc-meeting__month col-xs-5"><strong>March</strong></div>'
        '<div class="fomc-meeting__date col-xs-4">15 (unscheduled)</div></div></div>'
    )

    (row,) = parse_fomc_html(html, INGESTED).tables["economic_events"].iter_rows(named=True)

    assert row["ts_event"] == utc("2020-03-15T04:00:00")
    assert row["all_day"] is True
    assert row["title"] == "FOMC unscheduled meeting 2020-03-15"


def test_fomc_page_without_year_panels_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="no 'YYYY FOMC Meetings' panel"):
        parse_fomc_html("<html><body><h1>Page moved</h1></body></html>", INGESTED)


# --- FRED release dates -----------------------------------------------------------------


def test_fred_release_dates_are_0830_new_york_and_always_ask_for_json(httpserver: HTTPServer) -> None:
    for release_id in (10, 50):
        httpserver.expect_request(
            FRED_RELEASE_DATES_PATH, query_string=fred_query(release_id), headers={"User-Agent": USER_AGENT}
        ).respond_with_data(payload(f"fred_release_dates_{release_id}.json"), content_type="application/json")

    batch = fetch_fred_release_dates(client(httpserver, "fred"), FRED_KEY, INGESTED)
    found = events(batch)

    assert batch.rejected == []
    assert sorted(found) == sorted(
        [
            ("CPI", utc("2026-03-11T12:30:00")),
            ("CPI", utc("2026-07-14T12:30:00")),
            ("CPI", utc("2026-08-12T12:30:00")),
            ("CPI", utc("2026-11-10T13:30:00")),
            ("NFP", utc("2026-03-06T13:30:00")),
            ("NFP", utc("2026-08-07T12:30:00")),
            ("NFP", utc("2026-11-06T13:30:00")),
        ]
    )
    assert found[("NFP", utc("2026-08-07T12:30:00"))]["title"] == "Employment Situation"
    assert {row["source"] for row in found.values()} == {"fred"}
    assert {row["importance"] for row in found.values()} == {3}


def test_fred_without_a_key_asks_nothing(httpserver: HTTPServer) -> None:
    batch = fetch_fred_release_dates(client(httpserver, "fred"), None, INGESTED)

    assert batch.row_count == 0
    assert "economic_events" in batch.tables
    assert httpserver.log == []


def test_fred_error_body_becomes_feed_error_without_the_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request(FRED_RELEASE_DATES_PATH).respond_with_data(
        payload("fred_error_api_key.json"), status=400, content_type="application/json"
    )

    with pytest.raises(FeedError) as raised:
        fetch_fred_release_dates(client(httpserver, "fred"), FRED_KEY, INGESTED)

    message = str(raised.value)
    assert "FRED error 400" in message
    assert "The value for variable api_key is not registered" in message
    assert FRED_KEY not in message and FRED_KEY not in repr(raised.value.args)
    # The key did travel, so its absence above is the client's doing, not the test's.
    assert FRED_KEY in httpserver.log[0][0].query_string.decode()


def test_fred_xml_instead_of_json_is_malformed_without_the_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request(FRED_RELEASE_DATES_PATH).respond_with_data(
        payload("fred_release_dates_10.xml"), content_type="text/xml; charset=UTF-8"
    )

    with pytest.raises(MalformedResponse) as raised:
        fetch_fred_release_dates(client(httpserver, "fred"), FRED_KEY, INGESTED, release_ids=(10,))

    assert "not JSON" in str(raised.value)
    assert raised.value.payload.startswith("<?xml")
    assert FRED_KEY not in str(raised.value) and FRED_KEY not in raised.value.payload
    assert FRED_KEY in httpserver.log[0][0].query_string.decode()


def test_fred_error_page_that_is_not_json_does_not_leak_the_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request(FRED_RELEASE_DATES_PATH).respond_with_data(
        f"upstream failed for api_key={FRED_KEY}", status=400, content_type="text/plain"
    )

    with pytest.raises(MalformedResponse) as raised:
        fetch_fred_release_dates(client(httpserver, "fred"), FRED_KEY, INGESTED, release_ids=(10,))

    assert FRED_KEY not in str(raised.value) and FRED_KEY not in raised.value.payload


def test_fred_bad_release_items_are_rejected_and_unknown_releases_kept_all_day() -> None:
    answer = {
        "count": 4,
        "release_dates": [
            {"release_id": 10, "date": "2026-08-12"},
            {"release_id": 10, "date": "2026-13-01"},
            {"release_id": "ten", "date": "2026-08-12"},
            {"release_id": 46, "release_name": "Producer Price Index", "date": "2026-08-13"},
        ],
    }

    batch = parse_fred_release_dates(answer, INGESTED)
    found = events(batch)

    assert found[("CPI", utc("2026-08-12T12:30:00"))]["all_day"] is False
    producer = found[("Producer Price Index", utc("2026-08-13T04:00:00"))]
    assert producer["all_day"] is True and producer["importance"] == 1
    assert [rejected.reason for rejected in batch.rejected] == [
        "date '2026-13-01' is not YYYY-MM-DD",
        "release_id 'ten' is not an integer",
    ]


def test_fred_answer_without_release_dates_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="no 'release_dates' list"):
        parse_fred_release_dates({"seriess": []}, INGESTED)


# --- warehouse --------------------------------------------------------------------------


def test_loading_the_calendars_twice_changes_nothing(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    migrate(wh)
    batch = parse_bls_ics(payload("bls.ics").decode(), INGESTED)
    batch.extend(parse_fomc_html(payload("fomccalendars.htm").decode(), INGESTED))
    for release_id in (10, 50):
        batch.extend(parse_fred_release_dates(json.loads(payload(f"fred_release_dates_{release_id}.json")), INGESTED))

    first = upsert(wh, batch.tables)
    second = upsert(wh, batch.tables)

    with wh.connect() as con:
        counts = con.execute("SELECT source, count(*) FROM economic_events GROUP BY source ORDER BY source").fetchall()
        nfp = con.execute(
            "SELECT ts_event FROM economic_events WHERE source = 'bls' AND event_type = 'NFP' ORDER BY ts_event"
        ).fetchall()
    assert first == second == {"economic_events": 11 + 13 + 7}
    assert counts == [("bls", 11), ("fomc", 13), ("fred", 7)]
    assert [row[0] for row in nfp] == [
        utc("2026-03-06T13:30:00"),
        utc("2026-08-07T12:30:00"),
        utc("2026-11-06T13:30:00"),
    ]
