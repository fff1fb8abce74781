"""CME margins: JSON snapshots, snapshot diffs and clearing advisories, served by a local HTTP server."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from adapters.cme import (
    MARGINS_PATH,
    diff_margin_snapshots,
    fetch_cme,
    margins_query,
    parse_advisory,
    parse_amount,
    parse_date_time,
    parse_margin_rates,
)
from adapters.feed import FeedBatch, FeedUnavailable, MalformedResponse
from adapters.http import HttpClient
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

DATA = Path(__file__).resolve().parents[1] / "data" / "cme"
MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
WEDNESDAY = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
INGESTED = datetime(2026, 3, 4, 15, 0, 5, tzinfo=UTC)
ADVISORY_USD = "/notices/clearing/2020/06/Chadv20-239.html"
ADVISORY_PCT = "/notices/clearing/2026/03/Chadv26-071.html"
ADVISORY_PDF_ONLY = "/notices/clearing/2020/06/Chadv20-236.html"
ADVISORY_PDF_ONLY_PCT = "/notices/clearing/2026/03/Chadv26-080.html"


def recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def recorded_json(name: str) -> Any:
    return json.loads(recorded(name))


def snapshot(name: str, observed_at: datetime) -> pl.DataFrame:
    return parse_margin_rates(recorded_json(name), observed_at=observed_at, ingested_at=observed_at).tables[
        "margin_rates"
    ]


def query(product: str, page: int = 1) -> dict[str, str]:
    return {key: str(value) for key, value in margins_query(product, page).items()}


@pytest.fixture
def client(httpserver: HTTPServer) -> HttpClient:
    return HttpClient(
        feed="cme",
        base_url=httpserver.url_for("").rstrip("/"),
        user_agent="HYDRA tests",
        backoff_s=0.01,
        max_wait_s=2,
    )


def serve_html(httpserver: HTTPServer, path: str, name: str) -> None:
    httpserver.expect_request(path).respond_with_data(recorded(name), content_type="text/html; charset=utf-8")


def recorded_pdf(url: str) -> bytes:
    """What the PDF at `url` holds, from the fixture of the same name."""
    return (DATA / url.rsplit("/", 1)[-1]).read_bytes()


def serve_pdf(httpserver: HTTPServer, path: str, name: str) -> None:
    httpserver.expect_request(path).respond_with_data((DATA / name).read_bytes(), content_type="application/pdf")


# --- values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "unit"),
    [
        ("$10,000", 10_000.0, "USD"),
        ("10,000", 10_000.0, "USD"),
        (9500, 9500.0, "USD"),
        ("9.00%", 9.0, "PCT_NOTIONAL"),
        ("9.24 %", 9.24, "PCT_NOTIONAL"),
    ],
)
def test_amounts_in_dollars_and_percent(raw: object, value: float, unit: str) -> None:
    amount = parse_amount(raw)
    assert amount is not None
    assert (amount.value, amount.unit) == (value, unit)


@pytest.mark.parametrize("raw", ["N/A", "", "-", None])
def test_blank_amounts_are_none(raw: object) -> None:
    assert parse_amount(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("-500", "non-positive"),
        ("0", "non-positive"),
        ("TBD", "not an amount"),
        (float("nan"), "not a finite"),
        ("140%", "above 100%"),
        (True, "not an amount"),
    ],
)
def test_bad_amounts_say_why(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_amount(raw)


@pytest.mark.parametrize(
    ("text", "day", "clock"),
    [
        ("11 June 2020", date(2020, 6, 11), None),
        ("Friday, June 12th, 2020", date(2020, 6, 12), None),
        ("Wednesday, March 04, 2026 5:30 PM CT", date(2026, 3, 4), (17, 30)),
        ("06/11/2020", date(2020, 6, 11), None),
    ],
)
def test_advisory_dates(text: str, day: date, clock: tuple[int, int] | None) -> None:
    parsed_day, parsed_clock = parse_date_time(text)
    assert parsed_day == day
    assert (None if parsed_clock is None else (parsed_clock.hour, parsed_clock.minute)) == clock


# --- margins JSON ----------------------------------------------------------------------


def test_margins_json_exact_rows() -> None:
    batch = parse_margin_rates(recorded_json("margins_gc_2026-03-02.json"), observed_at=MONDAY, ingested_at=INGESTED)
    rows = batch.tables["margin_rates"].sort("start_period").to_dicts()
    assert batch.rejected == []
    assert [(row["start_period"], row["end_period"], row["maintenance_rate"], row["unit"]) for row in rows] == [
        ("01/2027", "02/2032", 21_000.0, "USD"),
        ("03/2026", "03/2026", 20_000.0, "USD"),
        ("04/2026", "06/2026", 20_000.0, "USD"),
        ("07/2026", "12/2026", 20_500.0, "USD"),
    ]
    first = rows[0]
    assert first["exchange"] == "CMX"
    assert first["clearing_code"] == "GC"
    assert first["name"] == "Gold Futures"
    assert first["currency"] == "USD"
    assert first["ts_event"] == MONDAY
    assert first["ts_ingested"] == INGESTED


def test_margins_json_percent_of_notional() -> None:
    batch = parse_margin_rates(recorded_json("margins_gc_percent.json"), observed_at=MONDAY, ingested_at=INGESTED)
    rows = batch.tables["margin_rates"].sort("start_period").to_dicts()
    assert batch.rejected == []
    assert [(row["start_period"], row["maintenance_rate"], row["unit"]) for row in rows] == [
        ("01/2027", 10.25, "PCT_NOTIONAL"),  # "10.25 %"
        ("04/2026", 9.0, "PCT_NOTIONAL"),  # "9%"
        ("07/2026", 9.5, "PCT_NOTIONAL"),  # 9.5 with "rateUnit": "PERCENT"
    ]


def test_margins_json_bad_rows_are_rejected_and_good_rows_load() -> None:
    batch = parse_margin_rates(recorded_json("margins_gc_dirty.json"), observed_at=MONDAY, ingested_at=INGESTED)
    frame = batch.tables["margin_rates"]
    assert frame.select("start_period", "maintenance_rate").rows() == [("04/2026", 22_000.0)]
    reasons = sorted(rejected.reason for rejected in batch.rejected)
    assert reasons == [
        "margin rate: conflicting duplicate for CMX/GC/04/2026",
        "margin rate: no startPeriod",
        "margin rate: non-positive amount: '-500'",
        "margin rate: not an amount: 'TBD'",
        "margin rate: not an object",
        "margin rate: percent of notional above 100%: '140%'",
    ]
    assert all(rejected.payload for rejected in batch.rejected)


@pytest.mark.parametrize("payload", [[], {"marginRates": None}, {"error": "Access Denied"}, "<html>"])
def test_margins_json_of_the_wrong_shape_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse, match="marginRates"):
        parse_margin_rates(payload, observed_at=MONDAY, ingested_at=INGESTED)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_margin_rates({"marginRates": []}, observed_at=datetime(2026, 3, 2), ingested_at=INGESTED)  # noqa: DTZ001


# --- snapshot diffs ----------------------------------------------------------------------


def test_diff_emits_exactly_the_changed_rates() -> None:
    previous = snapshot("margins_gc_2026-03-02.json", MONDAY)
    current = snapshot("margins_gc_2026-03-04.json", WEDNESDAY)
    notices = diff_margin_snapshots(previous, current, ingested_at=INGESTED)
    # 04/2026 20,000 -> 22,000 and 01/2027 21,000 -> 19,950 changed; 07/2026 did not; 03/2026
    # expired and 03/2032 was listed: contract rolls, not margin changes.
    assert notices.select("tier", "old_maintenance", "new_maintenance", "change_pct").sort("tier").rows() == [
        ("01/2027", 21_000.0, 19_950.0, pytest.approx(-5.0)),
        ("04/2026", 20_000.0, 22_000.0, pytest.approx(10.0)),
    ]
    row = notices.row(0, named=True)
    assert row["notice_id"] == "diff:GC:2026-03-04T15:00:00+00:00"
    assert row["source"] == "cme-margins-json"
    assert row["rate_type"] == "OUTRIGHT"
    assert row["product"] == "GC"
    assert row["unit"] == "USD"
    assert row["effective_date"] == date(2026, 3, 4)
    assert row["notice_date"] is None
    assert row["ts_event"] == WEDNESDAY
    assert row["ts_ingested"] == INGESTED


def test_first_snapshot_and_unchanged_snapshot_emit_nothing() -> None:
    current = snapshot("margins_gc_2026-03-04.json", WEDNESDAY)
    assert diff_margin_snapshots(None, current, ingested_at=INGESTED).is_empty()
    assert diff_margin_snapshots(current.clear(), current, ingested_at=INGESTED).is_empty()
    same_again = snapshot("margins_gc_2026-03-04.json", datetime(2026, 3, 5, 15, 0, tzinfo=UTC))
    assert diff_margin_snapshots(current, same_again, ingested_at=INGESTED).is_empty()


def test_diff_compares_with_the_latest_earlier_snapshot_even_if_current_is_in_previous() -> None:
    monday = snapshot("margins_gc_2026-03-02.json", MONDAY)
    wednesday = snapshot("margins_gc_2026-03-04.json", WEDNESDAY)
    history = pl.concat([wednesday, monday])
    notices = diff_margin_snapshots(history, wednesday, ingested_at=INGESTED)
    assert sorted(notices["tier"].to_list()) == ["01/2027", "04/2026"]


def test_diff_from_dollars_to_percent_keeps_the_new_rate_only() -> None:
    dollars = snapshot("margins_gc_2026-03-04.json", MONDAY)
    percent = snapshot("margins_gc_percent.json", WEDNESDAY)
    notices = diff_margin_snapshots(dollars, percent, ingested_at=INGESTED).sort("tier")
    assert notices.select("tier", "unit", "old_maintenance", "new_maintenance", "change_pct").rows() == [
        ("01/2027", "PCT_NOTIONAL", None, 10.25, None),
        ("04/2026", "PCT_NOTIONAL", None, 9.0, None),
        ("07/2026", "PCT_NOTIONAL", None, 9.5, None),
    ]


# --- advisories --------------------------------------------------------------------------


def test_advisory_in_dollars_gc_and_si_sections() -> None:
    batch = parse_advisory(recorded("Chadv20-239.html"), url=ADVISORY_USD, ingested_at=INGESTED)
    frame = batch.tables["margin_notices"]
    columns = ["product", "tier", "unit", "old_initial", "old_maintenance", "new_initial", "new_maintenance"]
    assert frame.select(columns).rows() == [
        ("GC", "1", "USD", 9_900.0, 9_000.0, 10_450.0, 9_500.0),
        ("GC", "2", "USD", 9_350.0, 8_500.0, 9_900.0, 9_000.0),
        ("GC", "3", "USD", 9_020.0, 8_200.0, 8_800.0, 8_000.0),  # written without "$"
        ("SI", "1", "USD", 7_700.0, 7_000.0, 8_250.0, 7_500.0),
    ]
    # (9,500 - 9,000) / 9,000 = +5.56 %; (9,000 - 8,500) / 8,500 = +5.88 %; (8,000 - 8,200) / 8,200 = -2.44 %;
    # (7,500 - 7,000) / 7,000 = +7.14 %
    assert frame["change_pct"].to_list() == pytest.approx([500 / 90, 500 / 85, -200 / 82, 500 / 70])
    first = frame.row(0, named=True)
    assert first["notice_id"] == "Chadv20-239"
    assert first["source"] == "cme-advisory"
    assert first["rate_type"] == "OUTRIGHT"
    assert first["title"] == "Performance Bond Requirements: Metals Margins - Effective June 12, 2020"
    assert first["notice_date"] == date(2020, 6, 11)
    assert first["effective_date"] == date(2020, 6, 12)
    assert first["ts_event"] == datetime(2020, 6, 11, 5, 0, tzinfo=UTC)  # midnight CDT
    assert first["ts_ingested"] == INGESTED
    # HG is not a wanted product; SI tier 2 says "TBD".
    assert [rejected.reason for rejected in batch.rejected] == ["advisory Chadv20-239 row: not an amount: 'TBD'"]
    assert '"section": "SI"' in batch.rejected[0].payload


def test_advisory_in_percent_with_section_rows_inside_one_table() -> None:
    batch = parse_advisory(recorded("Chadv26-071.html"), url=ADVISORY_PCT, ingested_at=INGESTED)
    frame = batch.tables["margin_notices"]
    columns = ["product", "tier", "unit", "old_initial", "old_maintenance", "new_initial", "new_maintenance"]
    assert frame.select(columns).rows() == [
        ("GC", "1", "PCT_NOTIONAL", 8.8, 8.0, 9.9, 9.0),
        ("GC", "2", "PCT_NOTIONAL", 9.35, 8.5, 9.24, 8.4),
        # blank CC: the product comes from the section row; dollars -> percent is not comparable
        ("SI", "1", "PCT_NOTIONAL", None, None, 13.2, 12.0),
    ]
    # (9.00 - 8.00) / 8.00 = +12.5 %; (8.40 - 8.50) / 8.50 = -1.18 %
    assert frame["change_pct"].to_list() == pytest.approx([12.5, -10 / 8.5, None])
    # 5:30 PM on 4 March 2026 in Chicago is CST (UTC-6): DST starts on 8 March.
    assert frame["ts_event"].unique().to_list() == [datetime(2026, 3, 4, 23, 30, tzinfo=UTC)]
    assert frame["effective_date"].unique().to_list() == [date(2026, 3, 6)]
    assert sorted(rejected.reason for rejected in batch.rejected) == [
        "advisory Chadv26-071 row: margin change of 380.0% exceeds +/-300%",
        "advisory Chadv26-071 row: no tier",
    ]


def test_advisory_inside_a_layout_table_reads_the_same() -> None:
    html = recorded("Chadv20-239.html")
    in_layout = html.replace(
        '<div class="cmeContentSection">', '<table class="cmeLayout"><tr><td>Menu</td><td><div>'
    ).replace('<div class="cmeFooter">', '</td><td>Related</td></tr></table><div class="cmeFooter">')
    assert in_layout != html
    plain = parse_advisory(html, url=ADVISORY_USD, ingested_at=INGESTED)
    nested = parse_advisory(in_layout, url=ADVISORY_USD, ingested_at=INGESTED)
    assert nested.tables["margin_notices"].equals(plain.tables["margin_notices"])
    assert nested.rejected == plain.rejected


def test_advisory_products_are_configurable() -> None:
    batch = parse_advisory(recorded("Chadv20-239.html"), url=ADVISORY_USD, ingested_at=INGESTED, products=["HG"])
    assert batch.tables["margin_notices"].select("product", "new_maintenance").rows() == [("HG", 3_750.0)]
    assert batch.rejected == []


def test_advisory_without_the_title_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="Performance Bond Requirements") as raised:
        parse_advisory(recorded("Chadv20-240_no_title.html"), url="/x/Chadv20-240.html", ingested_at=INGESTED)
    assert "could not be found" in raised.value.payload


def test_advisory_without_a_notice_date_is_malformed() -> None:
    html = recorded("Chadv20-239.html").replace("Notice Date", "Posted")
    with pytest.raises(MalformedResponse, match="Notice Date"):
        parse_advisory(html, url=ADVISORY_USD, ingested_at=INGESTED)


def test_advisory_whose_table_is_only_in_the_pdf_is_rejected_whole() -> None:
    batch = parse_advisory(recorded("Chadv20-236_pdf_only.html"), url=ADVISORY_PDF_ONLY, ingested_at=INGESTED)
    assert batch.tables["margin_notices"].is_empty()
    [rejected] = batch.rejected
    assert rejected.reason == (
        "advisory Chadv20-236: no margin table in the HTML page, the rates are only in the PDF"
        " (full text: /notices/clearing/2020/06/Chadv20-236.pdf)"
    )
    assert "Interest Rate Margins" in rejected.payload


# --- advisory PDFs -----------------------------------------------------------------------

VALUE_COLUMNS = [
    "product",
    "rate_type",
    "tier",
    "unit",
    "old_initial",
    "new_initial",
    "old_maintenance",
    "new_maintenance",
    "change_pct",
]


def test_pdf_fixtures_are_what_make_pdfs_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_pdfs", DATA / "make_pdfs.py")
    assert spec is not None and spec.loader is not None
    make_pdfs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_pdfs)
    assert (DATA / "Chadv20-236.pdf").read_bytes() == make_pdfs.dollars()
    assert (DATA / "Chadv26-080.pdf").read_bytes() == make_pdfs.percent()
    assert (DATA / "Chadv26-080_no_table.pdf").read_bytes() == make_pdfs.without_table()


def test_advisory_pdf_reads_like_the_same_table_in_html() -> None:
    fetched: list[str] = []

    def fetch_pdf(url: str) -> bytes:
        fetched.append(url)
        return recorded_pdf(url)

    from_pdf = parse_advisory(
        recorded("Chadv20-236_pdf_only.html"), url=ADVISORY_PDF_ONLY, ingested_at=INGESTED, fetch_pdf=fetch_pdf
    )
    from_html = parse_advisory(recorded("Chadv20-239.html"), url=ADVISORY_USD, ingested_at=INGESTED)

    assert fetched == ["/notices/clearing/2020/06/Chadv20-236.pdf"]
    # Same rates as Chadv20-239's HTML table, on two pages; silver's first row has a blank CC.
    frame = from_pdf.tables["margin_notices"]
    assert frame.select(VALUE_COLUMNS).equals(from_html.tables["margin_notices"].select(VALUE_COLUMNS))
    assert frame["product"].to_list() == ["GC", "GC", "GC", "SI"]
    assert frame["notice_id"].unique().to_list() == ["Chadv20-236"]
    # The header fields come from the page.
    assert frame["title"].unique().to_list() == [
        "Performance Bond Requirements: Agriculture, Energy, Equity, Metals & Interest Rate Margins"
        " - Effective June 12, 2020"
    ]
    assert frame["effective_date"].unique().to_list() == [date(2020, 6, 12)]
    [rejected] = from_pdf.rejected
    assert rejected.reason == "advisory Chadv20-236 row: not an amount: 'TBD'"
    assert json.loads(rejected.payload) == {
        "notice_id": "Chadv20-236",
        "section": "SI",
        "cc": "SI",
        "rate_type": "Outright",
        "tier": "2",
        "change": "Increase",
        "iso": "USD",
        "current_initial": "$7,150",
        "current_maintenance": "$6,500",
        "new_initial": "TBD",
        "new_maintenance": "TBD",
    }


def test_advisory_pdf_in_percent_with_wrapped_headers() -> None:
    batch = parse_advisory(
        recorded("Chadv26-080_pdf_only.html"), url=ADVISORY_PDF_ONLY_PCT, ingested_at=INGESTED, fetch_pdf=recorded_pdf
    )
    frame = batch.tables["margin_notices"]
    assert frame.select(VALUE_COLUMNS).rows() == [
        ("GC", "OUTRIGHT", "1", "PCT_NOTIONAL", 8.8, 9.9, 8.0, 9.0, pytest.approx(12.5)),
        ("GC", "OUTRIGHT", "2", "PCT_NOTIONAL", 9.35, 9.24, 8.5, 8.4, pytest.approx(-10 / 8.5)),
        # dollars -> percent: not comparable
        ("SI", "OUTRIGHT", "1", "PCT_NOTIONAL", None, 13.2, None, 12.0, None),
    ]
    # 5:30 PM on 11 March 2026 in Chicago is CDT (UTC-5): DST started on 8 March.
    assert frame["ts_event"].unique().to_list() == [datetime(2026, 3, 11, 22, 30, tzinfo=UTC)]
    assert [rejected.reason for rejected in batch.rejected] == [
        "advisory Chadv26-080 row: percent of notional above 100%: '132.00%'"
    ]


def test_advisory_pdf_without_a_margin_table_is_rejected_whole() -> None:
    batch = parse_advisory(
        recorded("Chadv26-080_pdf_only.html"),
        url=ADVISORY_PDF_ONLY_PCT,
        ingested_at=INGESTED,
        fetch_pdf=lambda _: (DATA / "Chadv26-080_no_table.pdf").read_bytes(),
    )
    assert batch.tables["margin_notices"].is_empty()
    [rejected] = batch.rejected
    assert rejected.reason == (
        "advisory Chadv26-080: no margin table in the HTML page nor in its PDF"
        " /notices/clearing/2026/03/Chadv26-080.pdf"
    )
    assert "The new rates are listed in the attached spreadsheet." in rejected.payload


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD></HTML>", "not a PDF, it starts with b'<HTML><HEAD>"),
        (b"", "not a PDF, it starts with b''"),
        (bytes(range(256)), "not a PDF, it starts with b'\\x00\\x01"),
        (b"%PDF-1.4\n" + bytes(range(256)), "pypdf cannot read it: "),
        ((DATA / "Chadv20-236.pdf").read_bytes()[:700], "pypdf cannot read it: "),  # a cut download
    ],
    ids=["html", "empty", "garbage", "garbage-after-header", "truncated"],
)
def test_advisory_body_that_is_not_a_readable_pdf_is_rejected_whole(body: bytes, error: str) -> None:
    batch = parse_advisory(
        recorded("Chadv20-236_pdf_only.html"), url=ADVISORY_PDF_ONLY, ingested_at=INGESTED, fetch_pdf=lambda _: body
    )
    assert batch.tables["margin_notices"].is_empty()
    [rejected] = batch.rejected
    prefix = (
        "advisory Chadv20-236: no margin table in the HTML page and its PDF"
        " /notices/clearing/2020/06/Chadv20-236.pdf cannot be read: "
    )
    assert rejected.reason.startswith(prefix + error)
    assert rejected.payload == body.decode("utf-8", "replace")


def test_advisory_page_without_a_table_or_a_pdf_is_rejected_whole() -> None:
    html = recorded("Chadv20-236_pdf_only.html").replace('<a href="Chadv20-236.pdf">click here</a>', "see below")
    batch = parse_advisory(html, url=ADVISORY_PDF_ONLY, ingested_at=INGESTED, fetch_pdf=recorded_pdf)
    assert [rejected.reason for rejected in batch.rejected] == [
        "advisory Chadv20-236: no margin table in the HTML page and no PDF linked"
    ]


# --- fetching --------------------------------------------------------------------------


def test_fetch_snapshot_diffs_and_advisories(httpserver: HTTPServer, client: HttpClient) -> None:
    previous = pl.concat(
        [snapshot("margins_gc_2026-03-02.json", MONDAY), snapshot("margins_si_2026-03-02.json", MONDAY)]
    )
    for product in ("GC", "SI"):
        httpserver.expect_request(MARGINS_PATH, query_string=query(product)).respond_with_data(
            recorded(f"margins_{product.lower()}_2026-03-04.json"), content_type="application/json"
        )
    serve_html(httpserver, ADVISORY_USD, "Chadv20-239.html")
    serve_html(httpserver, ADVISORY_PCT, "Chadv26-071.html")

    batch = fetch_cme(client, ("GC", "SI"), previous, [ADVISORY_USD, ADVISORY_PCT], WEDNESDAY, INGESTED)

    rates = batch.tables["margin_rates"]
    assert rates.group_by("clearing_code").len().sort("clearing_code").rows() == [("GC", 4), ("SI", 2)]
    notices = batch.tables["margin_notices"]
    assert notices.group_by("source").len().sort("source").rows() == [("cme-advisory", 7), ("cme-margins-json", 2)]
    assert sorted(notices.filter(pl.col("source") == "cme-margins-json")["tier"].to_list()) == ["01/2027", "04/2026"]
    # SI 06/2026 went from 25,000 to 150,000 (+500 %): a misread, not a margin change.
    assert any("margin change of 500.0% exceeds" in rejected.reason for rejected in batch.rejected)
    assert len(batch.rejected) == 4  # that one, SI "TBD" in Chadv20-239, two rows of Chadv26-071
    assert httpserver.log[0][0].headers["User-Agent"] == "HYDRA tests"


def test_fetch_follows_the_pages(httpserver: HTTPServer, client: HttpClient) -> None:
    first = recorded_json("margins_gc_2026-03-04.json")
    first["props"]["pageTotal"] = 2
    second = recorded_json("margins_gc_percent.json")
    second["marginRates"] = second["marginRates"][:1]
    second["marginRates"][0]["startPeriod"] = "05/2032"
    httpserver.expect_request(MARGINS_PATH, query_string=query("GC", 1)).respond_with_json(first)
    httpserver.expect_request(MARGINS_PATH, query_string=query("GC", 2)).respond_with_json(second)
    batch = fetch_cme(client, ["GC"], None, [], WEDNESDAY, INGESTED)
    assert batch.tables["margin_rates"].height == 5
    assert batch.tables["margin_notices"].is_empty()


def test_cme_403_is_feed_unavailable(httpserver: HTTPServer, client: HttpClient) -> None:
    httpserver.expect_request(MARGINS_PATH).respond_with_data(
        "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY>You don't have permission</BODY></HTML>", status=403
    )
    with pytest.raises(FeedUnavailable, match="HTTP 403"):
        fetch_cme(client, ["GC"], None, [], WEDNESDAY, INGESTED)


def test_malformed_json_for_one_product_does_not_lose_the_other(httpserver: HTTPServer, client: HttpClient) -> None:
    httpserver.expect_request(MARGINS_PATH, query_string=query("GC")).respond_with_data(
        "<html><body>Please enable JavaScript</body></html>", content_type="text/html"
    )
    httpserver.expect_request(MARGINS_PATH, query_string=query("SI")).respond_with_data(
        recorded("margins_si_2026-03-02.json"), content_type="application/json"
    )
    batch = fetch_cme(client, ["GC", "SI"], None, [], WEDNESDAY, INGESTED)
    assert batch.tables["margin_rates"]["clearing_code"].to_list() == ["SI", "SI"]
    [rejected] = batch.rejected
    assert "body is not JSON" in rejected.reason
    assert rejected.payload == "<html><body>Please enable JavaScript</body></html>"


def test_malformed_advisory_page_is_rejected_and_the_rest_loads(httpserver: HTTPServer, client: HttpClient) -> None:
    httpserver.expect_request(MARGINS_PATH, query_string=query("GC")).respond_with_data(
        recorded("margins_gc_2026-03-04.json"), content_type="application/json"
    )
    serve_html(httpserver, "/notices/clearing/2020/06/Chadv20-240.html", "Chadv20-240_no_title.html")
    batch = fetch_cme(client, ["GC"], None, ["/notices/clearing/2020/06/Chadv20-240.html"], WEDNESDAY, INGESTED)
    assert batch.tables["margin_rates"].height == 4
    assert [rejected.reason for rejected in batch.rejected] == [
        "cme: advisory /notices/clearing/2020/06/Chadv20-240.html: no 'Performance Bond Requirements' title"
    ]


def test_fetch_reads_the_tables_of_advisory_pdfs(httpserver: HTTPServer, client: HttpClient) -> None:
    for product in ("GC", "SI"):
        httpserver.expect_request(MARGINS_PATH, query_string=query(product)).respond_with_data(
            recorded(f"margins_{product.lower()}_2026-03-04.json"), content_type="application/json"
        )
    serve_html(httpserver, ADVISORY_PDF_ONLY, "Chadv20-236_pdf_only.html")
    serve_pdf(httpserver, "/notices/clearing/2020/06/Chadv20-236.pdf", "Chadv20-236.pdf")
    serve_html(httpserver, ADVISORY_PDF_ONLY_PCT, "Chadv26-080_pdf_only.html")
    serve_pdf(httpserver, "/notices/clearing/2026/03/Chadv26-080.pdf", "Chadv26-080.pdf")

    batch = fetch_cme(client, ("GC", "SI"), None, [ADVISORY_PDF_ONLY, ADVISORY_PDF_ONLY_PCT], WEDNESDAY, INGESTED)

    notices = batch.tables["margin_notices"]
    assert notices.group_by("notice_id", "unit").len().sort("notice_id").rows() == [
        ("Chadv20-236", "USD", 4),
        ("Chadv26-080", "PCT_NOTIONAL", 3),
    ]
    assert sorted(rejected.reason for rejected in batch.rejected) == [
        "advisory Chadv20-236 row: not an amount: 'TBD'",
        "advisory Chadv26-080 row: percent of notional above 100%: '132.00%'",
    ]
    pdf_requests = [request for request, _ in httpserver.log if request.path.endswith(".pdf")]
    assert [request.path for request in pdf_requests] == [
        "/notices/clearing/2020/06/Chadv20-236.pdf",
        "/notices/clearing/2026/03/Chadv26-080.pdf",
    ]
    assert {request.headers["User-Agent"] for request in pdf_requests} == {"HYDRA tests"}


ACCESS_DENIED = "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY>You don't have permission</BODY></HTML>"
NO_TABLE = "no margin table in the HTML page"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "reason"),
    [
        (
            403,
            ACCESS_DENIED,
            "text/html",
            f"{NO_TABLE} and its PDF could not be fetched:"
            f" cme: GET /notices/clearing/2020/06/Chadv20-236.pdf: HTTP 403 {ACCESS_DENIED}",
        ),
        (
            404,
            "Not Found",
            "text/plain",
            f"{NO_TABLE} and its PDF could not be fetched: cme: GET /notices/clearing/2020/06/Chadv20-236.pdf:"
            " HTTP 404 Not Found",
        ),
        (
            200,
            ACCESS_DENIED,
            "application/pdf",
            f"{NO_TABLE} and its PDF /notices/clearing/2020/06/Chadv20-236.pdf cannot be read:"
            " not a PDF, it starts with b'<HTML><HEAD><TITLE>Access Denied</TITLE>'",
        ),
        (
            200,
            (DATA / "Chadv26-080_no_table.pdf").read_bytes(),
            "application/pdf",
            f"{NO_TABLE} nor in its PDF /notices/clearing/2020/06/Chadv20-236.pdf",
        ),
    ],
    ids=["403", "404", "html-as-pdf", "no-table"],
)
def test_fetch_quarantines_an_advisory_whose_pdf_gives_no_table(
    httpserver: HTTPServer, client: HttpClient, status: int, body: str | bytes, content_type: str, reason: str
) -> None:
    httpserver.expect_request(MARGINS_PATH, query_string=query("GC")).respond_with_data(
        recorded("margins_gc_2026-03-04.json"), content_type="application/json"
    )
    serve_html(httpserver, ADVISORY_PDF_ONLY, "Chadv20-236_pdf_only.html")
    httpserver.expect_request("/notices/clearing/2020/06/Chadv20-236.pdf").respond_with_data(
        body, status=status, content_type=content_type
    )

    batch = fetch_cme(client, ["GC"], None, [ADVISORY_PDF_ONLY], WEDNESDAY, INGESTED)

    assert batch.tables["margin_rates"].height == 4  # the snapshot still loads
    assert batch.tables["margin_notices"].is_empty()
    assert [rejected.reason for rejected in batch.rejected] == [f"advisory Chadv20-236: {reason}"]


# --- warehouse -------------------------------------------------------------------------


def counts(warehouse: Warehouse) -> dict[str, int]:
    with warehouse.connect() as con:
        return {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("margin_rates", "margin_notices")
        }


def test_loading_twice_gives_the_same_rows(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    migrate(warehouse)
    monday = snapshot("margins_gc_2026-03-02.json", MONDAY)
    batch = parse_margin_rates(recorded_json("margins_gc_2026-03-04.json"), observed_at=WEDNESDAY, ingested_at=INGESTED)
    batch.extend(FeedBatch("cme", {"margin_rates": monday}))
    batch.extend(parse_advisory(recorded("Chadv20-239.html"), url=ADVISORY_USD, ingested_at=INGESTED))
    batch.extend(parse_advisory(recorded("Chadv26-071.html"), url=ADVISORY_PCT, ingested_at=INGESTED))
    current = batch.tables["margin_rates"].filter(pl.col("ts_event") == WEDNESDAY)
    batch.extend(FeedBatch("cme", {"margin_notices": diff_margin_snapshots(monday, current, ingested_at=INGESTED)}))

    upsert(warehouse, batch.tables)
    first = counts(warehouse)
    upsert(warehouse, batch.tables)
    assert counts(warehouse) == first == {"margin_rates": 8, "margin_notices": 9}
