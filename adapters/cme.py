"""CME Group margins for COMEX gold (GC) and silver (SI): the JSON snapshot and the clearing advisories.

Two sources feed two tables:

- `margin_rates`: the maintenance rate per contract-month range, as CME's margins service
  shows it now. Each snapshot is kept (keyed by its observation time) so that a change can
  be derived by `diff_margin_snapshots` even when its advisory was never seen.
- `margin_notices`: changes, from clearing advisories (source 'cme-advisory', with notice
  and effective dates and the initial rates; the table read from the HTML page, or from
  the linked PDF with pypdf when, as in most advisories, only the PDF has it) and from
  snapshot diffs (source 'cme-margins-json', maintenance only, dated when HYDRA noticed).

Units. A dollar amount is stored with unit 'USD'. Since 2026 CME may set metals margins as a
percentage of notional; such a rate is stored as the percentage itself (9.0 for "9%") with
unit 'PCT_NOTIONAL'. `change_pct` is a percentage too: 100 x (new - old) / old of the
maintenance rate, and only when old and new share a unit: a switch from dollars to percent
keeps the new rates and leaves the old ones and the change empty, since a dollar figure and
a share of notional cannot be compared without the contract's price.

CME answers scrapers with HTTP 403, which HttpClient raises as FeedUnavailable: the
ingestion run is recorded as degraded and trading goes on without fresh margins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from html.parser import HTMLParser
from io import BytesIO
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import polars as pl
import requests
from pypdf import PdfReader

from adapters.feed import (
    PAYLOAD_LIMIT,
    FeedBatch,
    FeedError,
    MalformedResponse,
    Rejected,
    aware_utc,
    payload_text,
)
from adapters.http import HttpClient
from adapters.tables import TABLE_SCHEMAS
from adapters.window import Window, current_only_note

FEED = "cme"
DEFAULT_PRODUCTS: tuple[str, ...] = ("GC", "SI")
MARGINS_PATH = "/CmeWS/mvc/Margins/OUTRIGHT"
MARGINS_EXCHANGE = "CMX"
MARGINS_SECTOR = "METALS"
MARGINS_PAGE_SIZE = 12
# The service pages its answer; a metals product has far fewer month ranges than this
# bound allows, so reaching it means the paging fields are being misread.
MAX_MARGIN_PAGES = 10

SOURCE_ADVISORY = "cme-advisory"
SOURCE_SNAPSHOT = "cme-margins-json"
UNIT_USD = "USD"
UNIT_PCT = "PCT_NOTIONAL"
# CME has never moved a metals margin by anything near this in one step; a bigger jump
# is a misread figure (a dropped digit, a percent read as dollars).
MAX_ABS_CHANGE_PCT = 300.0
CHICAGO = ZoneInfo("America/Chicago")

MARGIN_RATES_SCHEMA = TABLE_SCHEMAS["margin_rates"]

MARGIN_NOTICES_SCHEMA = TABLE_SCHEMAS["margin_notices"]

# The JSON form of a percent-of-notional rate is not documented yet: a "%" in the value is
# the observed form on CME's pages, a unit field the likely one in the service.
_PERCENT_UNIT_KEYS = ("rateUnit", "maintenanceRateUnit", "unit")
_PERCENT_UNIT_WORDS = frozenset({"%", "PCT", "PERCENT", "PERCENTAGE", "PCT_NOTIONAL", "PERCENT_OF_NOTIONAL"})


@dataclass(frozen=True)
class Amount:
    value: float
    unit: str


def parse_amount(raw: object, *, percent: bool = False) -> Amount | None:
    """A margin figure: "$10,000", "10,000", 10000, "9.00%" (or a number with `percent`).

    None for the blanks advisories print where a rate does not exist yet ("N/A", "-", "").
    ValueError, with the reason, for anything else that is not a positive, finite amount.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError(f"not an amount: {raw!r}")
    if isinstance(raw, int | float):
        value, is_percent = float(raw), percent
    else:
        text = "".join(str(raw).split())
        if text.upper() in {"", "N/A", "NA", "-", "--", "\u2013", "\u2014"}:
            return None
        match = re.fullmatch(r"(-?)(\$?)(\d[\d,]*(?:\.\d+)?|\.\d+)(%?)", text)
        if match is None or (match[2] and match[4]):
            raise ValueError(f"not an amount: {raw!r}")
        value = float(match[3].replace(",", ""))
        value = -value if match[1] else value
        is_percent = percent or bool(match[4])
    if not math.isfinite(value):
        raise ValueError(f"not a finite amount: {raw!r}")
    if value <= 0:
        raise ValueError(f"non-positive amount: {raw!r}")
    if is_percent and value > 100:
        raise ValueError(f"percent of notional above 100%: {raw!r}")
    return Amount(value, UNIT_PCT if is_percent else UNIT_USD)


def change_pct(old: float | None, new: float | None) -> float | None:
    """100 x (new - old) / old, or None when either side is missing."""
    if old is None or new is None:
        return None
    return (new - old) / old * 100.0


# ---------------------------------------------------------------------------------------
# Margins JSON snapshot


def margins_query(product: str, page: int) -> dict[str, str | int]:
    return {
        "clearingCode": product,
        "sector": MARGINS_SECTOR,
        "exchange": MARGINS_EXCHANGE,
        "pageSize": MARGINS_PAGE_SIZE,
        "pageNumber": page,
    }


def parse_margin_rates(
    payload: Any,
    *,
    observed_at: datetime,
    ingested_at: datetime,
    products: Collection[str] = DEFAULT_PRODUCTS,
    exchange: str = MARGINS_EXCHANGE,
) -> FeedBatch:
    """One page of the margins service -> `margin_rates` rows stamped `observed_at`.

    Rows of other clearing codes are skipped; a row that cannot be read, and a second row
    for the same month range with a different rate, are rejected with the reason. A row
    without an exchange takes the one the request asked for.
    """
    observed = aware_utc(observed_at, "observed_at")
    ingested = aware_utc(ingested_at, "ingested_at")
    if not isinstance(payload, dict) or not isinstance(payload.get("marginRates"), list):
        raise MalformedResponse(FEED, "margins: expected an object with a 'marginRates' list", payload_text(payload))
    wanted = {product.upper() for product in products}
    kept: dict[tuple[str, str, str], dict[str, Any]] = {}
    rejected: list[Rejected] = []
    for item in payload["marginRates"]:
        code = item.get("clearingCode") if isinstance(item, dict) else None
        if isinstance(code, str) and code.strip().upper() not in wanted:
            continue
        try:
            row = _margin_rate_row(item, exchange, observed, ingested)
        except ValueError as error:
            rejected.append(Rejected.of(item, f"margin rate: {error}"))
            continue
        key = (row["exchange"], row["clearing_code"], row["start_period"])
        earlier = kept.get(key)
        if earlier is None:
            kept[key] = row
        elif (earlier["maintenance_rate"], earlier["unit"]) != (row["maintenance_rate"], row["unit"]):
            rejected.append(Rejected.of(item, f"margin rate: conflicting duplicate for {'/'.join(key)}"))
    return FeedBatch(FEED, {"margin_rates": _frame(kept.values(), MARGIN_RATES_SCHEMA)}, rejected)


def _margin_rate_row(item: Any, exchange: str, observed: datetime, ingested: datetime) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValueError("not an object")
    code = _text(item.get("clearingCode"))
    start_period = _text(item.get("startPeriod"))
    if not code:
        raise ValueError("no clearingCode")
    if not start_period:
        raise ValueError("no startPeriod")
    flagged_percent = any(str(item.get(key, "")).strip().upper() in _PERCENT_UNIT_WORDS for key in _PERCENT_UNIT_KEYS)
    rate = parse_amount(item.get("maintenanceRate"), percent=flagged_percent)
    if rate is None:
        raise ValueError("no maintenanceRate")
    return {
        "exchange": _text(item.get("exchange")) or exchange,
        "clearing_code": code.upper(),
        "name": _text(item.get("name")) or None,
        "start_period": start_period,
        "end_period": _text(item.get("endPeriod")) or None,
        "maintenance_rate": rate.value,
        "unit": rate.unit,
        "currency": _text(item.get("currency")) or None,
        "ts_event": observed,
        "ts_ingested": ingested,
    }


def margin_page_total(payload: Any) -> int:
    """How many pages the service says it has (1 when it does not say)."""
    props = payload.get("props") if isinstance(payload, dict) else None
    total = props.get("pageTotal") if isinstance(props, dict) else None
    try:
        return max(1, int(total)) if total is not None else 1
    except (TypeError, ValueError):
        return 1


def diff_margin_snapshots(
    previous: pl.DataFrame | None, current: pl.DataFrame, *, ingested_at: datetime
) -> pl.DataFrame:
    """`margin_notices` rows for every rate of `current` that differs from its last earlier value.

    Both frames hold `margin_rates` rows; `previous` may hold several snapshots (and even
    the current one): each current row is compared with the latest row of the same
    exchange, code and month range observed strictly before it. A month range present on
    one side only is a contract roll, not a margin change, and yields nothing; so does the
    first snapshot (no previous). notice_id is 'diff:<code>:<ISO time of the snapshot>',
    tier the start period, effective_date the snapshot's date in Chicago (CME's business
    day), and there is no notice date: only the time HYDRA noticed is known.
    """
    ingested = aware_utc(ingested_at, "ingested_at")
    if previous is None or previous.is_empty() or current.is_empty():
        return _frame((), MARGIN_NOTICES_SCHEMA)
    key = ["exchange", "clearing_code", "start_period"]
    before = previous.select([*key, "maintenance_rate", "unit", "ts_event"]).rename(
        {"maintenance_rate": "old_rate", "unit": "old_unit", "ts_event": "old_ts"}
    )
    pairs = (
        current.join(before, on=key, how="inner")
        .filter(pl.col("old_ts") < pl.col("ts_event"))
        .sort("old_ts")
        .unique(subset=[*key, "ts_event"], keep="last", maintain_order=True)
        .filter(
            (pl.col("old_unit") != pl.col("unit")) | ((pl.col("old_rate") - pl.col("maintenance_rate")).abs() > 1e-9)
        )
        .sort([*key, "ts_event"])
    )
    rows = []
    for pair in pairs.iter_rows(named=True):
        observed: datetime = pair["ts_event"]
        comparable = pair["old_unit"] == pair["unit"]
        old = pair["old_rate"] if comparable else None
        rows.append(
            {
                "notice_id": f"diff:{pair['clearing_code']}:{observed.astimezone(UTC).isoformat()}",
                "product": pair["clearing_code"],
                "rate_type": "OUTRIGHT",
                "tier": pair["start_period"],
                "title": None,
                "notice_date": None,
                "effective_date": observed.astimezone(CHICAGO).date(),
                "ts_event": observed,
                "unit": pair["unit"],
                "old_initial": None,
                "new_initial": None,
                "old_maintenance": old,
                "new_maintenance": pair["maintenance_rate"],
                "change_pct": change_pct(old, pair["maintenance_rate"]),
                "source": SOURCE_SNAPSHOT,
                "ts_ingested": ingested,
            }
        )
    return _frame(rows, MARGIN_NOTICES_SCHEMA)


def split_implausible_changes(notices: pl.DataFrame) -> tuple[pl.DataFrame, list[Rejected]]:
    """Keep notices whose change is within +/-MAX_ABS_CHANGE_PCT; reject the others with the reason."""
    implausible = pl.col("change_pct").is_not_null() & (pl.col("change_pct").abs() > MAX_ABS_CHANGE_PCT)
    rejected = [
        Rejected.of(row, f"margin change of {row['change_pct']:.1f}% exceeds +/-{MAX_ABS_CHANGE_PCT:.0f}%")
        for row in notices.filter(implausible).iter_rows(named=True)
    ]
    return notices.filter(~implausible), rejected


# ---------------------------------------------------------------------------------------
# Clearing advisories (HTML)

_TITLE_PATTERN = re.compile(r"performance bond requirement", re.IGNORECASE)
_NOTICE_ID_PATTERN = re.compile(r"chadv(\d{2})-?(\d{2,4})", re.IGNORECASE)
_SECTION_PATTERN = re.compile(r"\S.*\(([A-Z0-9]{1,5})\)$")
_HEADER_NAMES = {
    "cc": "cc",
    "rate type": "rate_type",
    "tier": "tier",
    "change": "change",
    "iso": "iso",
    "current initial": "current_initial",
    "current maintenance": "current_maintenance",
    "new initial": "new_initial",
    "new maintenance": "new_maintenance",
}
_REQUIRED_COLUMNS = frozenset({"cc", "rate_type", "tier", "new_maintenance"})


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Row:
    table: int
    cells: tuple[str, ...]


@dataclass
class _OpenTable:
    number: int
    row: list[str] | None = None
    cell: list[str] | None = None


class _PageReader(HTMLParser):
    """Flattens a page into its text chunks and table rows, in document order.

    Text chunks end at block tags and cell boundaries, inside tables as outside, so a field
    laid out as a table row ("Notice Date" | "11 June 2020") reads the same as one laid out
    in a list, and a page laid out in a table still has its headings and fields. Tables may
    nest: each keeps its own open row and cell.
    """

    _BLOCK_TAGS = frozenset(
        {"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "br", "section", "article", "header", "footer"}
        | {"h1", "h2", "h3", "h4", "h5", "h6", "caption", "thead", "tbody", "tfoot"}
    )
    _SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[_Text | _Row] = []
        self.headings: list[str] = []
        self.page_title = ""
        self.links: list[str] = []
        self._buffer: list[str] = []
        self._skipping = 0
        self._tables: list[_OpenTable] = []
        self._table_count = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        table = self._tables[-1] if self._tables else None
        if tag in self._SKIPPED_TAGS:
            self._skipping += 1
        elif tag == "a":
            self.links.extend(value for name, value in attrs if name == "href" and value)
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self._flush()
            self._table_count += 1
            self._tables.append(_OpenTable(self._table_count))
        elif tag == "tr" and table is not None:
            self._end_row(table)
            table.row = []
        elif tag in {"td", "th"} and table is not None:
            self._flush()
            self._end_cell(table)
            if table.row is None:
                table.row = []
            table.cell = []
        elif tag in self._BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        table = self._tables[-1] if self._tables else None
        if tag in self._SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in {"td", "th"} and table is not None:
            self._end_cell(table)
        elif tag == "tr" and table is not None:
            self._end_row(table)
        elif tag == "table" and table is not None:
            self._end_row(table)
            self._tables.pop()
        elif tag in {"h1", "h2"}:
            heading = _squash("".join(self._buffer))
            self._flush()
            if heading:
                self.headings.append(heading)
        elif tag in self._BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._in_title:
            self.page_title += data
            return
        self._buffer.append(data)
        if self._tables and self._tables[-1].cell is not None:
            self._tables[-1].cell.append(data)

    def close(self) -> None:
        super().close()
        while self._tables:
            self._end_row(self._tables.pop())
        self._flush()

    def _break(self) -> None:
        # A block tag ends a text chunk; inside a cell it also separates the cell's words.
        cell = self._tables[-1].cell if self._tables else None
        if cell is not None:
            cell.append(" ")
        self._flush()

    def _flush(self) -> None:
        text = _squash("".join(self._buffer))
        self._buffer.clear()
        if text:
            self.events.append(_Text(text))

    def _end_cell(self, table: _OpenTable) -> None:
        if table.cell is None:
            return
        self._flush()
        text = _squash("".join(table.cell))
        table.cell = None
        if table.row is not None:
            table.row.append(text)

    def _end_row(self, table: _OpenTable) -> None:
        self._end_cell(table)
        if table.row is not None and any(table.row):
            self.events.append(_Row(table.number, tuple(table.row)))
        table.row = None


@dataclass(frozen=True)
class _AdvisoryHeader:
    notice_id: str
    title: str
    notice_date: date
    effective_date: date
    ts_event: datetime


def advisory_notice_id(url: str) -> str | None:
    """'Chadv20-239' from a URL such as .../notices/clearing/2020/06/Chadv20-239.html."""
    match = _NOTICE_ID_PATTERN.search(url.rsplit("/", 1)[-1])
    return f"Chadv{match[1]}-{match[2]}" if match else None


def parse_advisory(
    html: str,
    *,
    url: str,
    ingested_at: datetime,
    products: Collection[str] = DEFAULT_PRODUCTS,
    fetch_pdf: Callable[[str], bytes] | None = None,
) -> FeedBatch:
    """A clearing advisory page (and, when its table is only there, its PDF) -> `margin_notices` rows.

    The page must carry a performance-bond title and a notice date, and an effective date
    (its field, else the title's "Effective <date>"): otherwise MalformedResponse. The
    notice id comes from the URL, else from the page's '#' field. ts_event is the notice
    date at 00:00 in Chicago (or at the time the field gives), in UTC.

    Margin tables are found by their header row (CC, Rate Type, Tier, ..., New
    Maintenance); a row's product is its CC cell, else the code of the section heading
    above it ("COMEX 100 GOLD FUTURES (GC)"). Rows of other products are skipped; a row
    of a wanted product that cannot be read is rejected with the reason.

    Most advisories since about 2016 print the table only in the linked PDF. Its address
    is handed to `fetch_pdf` (fetch_cme passes the feed's HTTP client) and its table read
    the same way, the header fields still coming from the page. Without `fetch_pdf`, or
    when the PDF cannot be fetched, is not a PDF or has no margin table, the advisory is
    rejected whole with the reason, rather than passing for "no changes".
    """
    ingested = aware_utc(ingested_at, "ingested_at")
    reader = _PageReader()
    reader.feed(html)
    reader.close()
    header = _advisory_header(reader, url, html)
    wanted = {product.upper() for product in products}
    found = _margin_rows(header, reader.events, wanted, ingested)
    if found is not None:
        return found
    lacking = f"advisory {header.notice_id}: no margin table in the HTML page"
    pdf_url = _pdf_link(reader.links, url, header.notice_id)
    if pdf_url is None:
        return _rejected_whole(html, f"{lacking} and no PDF linked")
    if fetch_pdf is None:
        return _rejected_whole(html, f"{lacking}, the rates are only in the PDF (full text: {pdf_url})")
    try:
        pdf = fetch_pdf(pdf_url)
    except FeedError as error:
        return _rejected_whole(html, f"{lacking} and its PDF could not be fetched: {error}")
    try:
        lines = _pdf_lines(pdf)
    except ValueError as error:
        payload = pdf[:PAYLOAD_LIMIT].decode("utf-8", "replace")
        return _rejected_whole(payload, f"{lacking} and its PDF {pdf_url} cannot be read: {error}")
    found = _margin_rows(header, _pdf_events(lines), wanted, ingested)
    if found is None:
        return _rejected_whole("\n".join(lines), f"{lacking} nor in its PDF {pdf_url}")
    return found


def _margin_rows(
    header: _AdvisoryHeader, events: Iterable[_Text | _Row], wanted: Collection[str], ingested: datetime
) -> FeedBatch | None:
    """The rows of the margin tables in `events` (a page's or a PDF's), or None when there is no table."""
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    found_table = False
    columns: dict[str, int] | None = None
    columns_table = 0
    section: str | None = None
    for event in events:
        if isinstance(event, _Text):
            section_match = _SECTION_PATTERN.fullmatch(event.text)
            if section_match:
                section = section_match[1]
            continue
        header_columns = _header_columns(event.cells)
        if header_columns is not None:
            columns, columns_table, found_table = header_columns, event.table, True
            continue
        if columns is None or event.table != columns_table or len(event.cells) == 1:
            continue
        cells = {name: event.cells[index] if index < len(event.cells) else "" for name, index in columns.items()}
        product = (cells["cc"] or section or "").upper()
        if product not in wanted:
            continue
        try:
            rows.append(_advisory_row(header, product, cells, ingested))
        except ValueError as error:
            evidence = {"notice_id": header.notice_id, "section": section, **cells}
            rejected.append(Rejected.of(evidence, f"advisory {header.notice_id} row: {error}"))
    if not found_table:
        return None
    return FeedBatch(FEED, {"margin_notices": _frame(rows, MARGIN_NOTICES_SCHEMA)}, rejected)


def _pdf_link(links: Sequence[str], url: str, notice_id: str) -> str | None:
    """The advisory's PDF: the linked PDF named after the notice, else the first linked PDF."""
    pdfs = [urljoin(url, link) for link in links if link.lower().split("?")[0].endswith(".pdf")]
    named = [pdf for pdf in pdfs if notice_id.lower() in pdf.lower()]
    return next(iter(named or pdfs), None)


def _rejected_whole(payload: str, reason: str) -> FeedBatch:
    return FeedBatch(FEED, {"margin_notices": _frame((), MARGIN_NOTICES_SCHEMA)}, [Rejected(payload, reason)])


def _advisory_header(reader: _PageReader, url: str, html: str) -> _AdvisoryHeader:
    def malformed(message: str) -> MalformedResponse:
        return MalformedResponse(FEED, f"advisory {url}: {message}", html[:100_000])

    titles = [*reader.headings, _squash(reader.page_title)]
    title = next((text for text in titles if _TITLE_PATTERN.search(text)), None)
    if title is None:
        raise malformed("no 'Performance Bond Requirements' title")
    title = re.sub(r"\s*[-|]\s*CME Group\s*$", "", title)
    texts = [event.text for event in reader.events if isinstance(event, _Text)]
    notice_id = advisory_notice_id(url)
    if notice_id is None:
        number = _field(texts, "#") or ""
        match = re.fullmatch(r"(\d{2})-(\d{2,4})", number)
        if match is None:
            raise malformed("no advisory number in the URL or the page")
        notice_id = f"Chadv{match[1]}-{match[2]}"
    notice_text = _field(texts, "Notice Date")
    if notice_text is None:
        raise malformed("no 'Notice Date' field")
    try:
        notice_date, notice_time = parse_date_time(notice_text)
    except ValueError as error:
        raise malformed(f"Notice Date: {error}") from None
    effective_text = _field(texts, "Effective Date")
    if effective_text is None:
        in_title = re.search(r"Effective\s+(.+?)\s*$", title)
        effective_text = in_title[1] if in_title else None
    if effective_text is None:
        raise malformed("no 'Effective Date' field or title date")
    try:
        effective_date, _ = parse_date_time(effective_text)
    except ValueError as error:
        raise malformed(f"Effective Date: {error}") from None
    announced = datetime.combine(notice_date, notice_time or time(0, 0), CHICAGO).astimezone(UTC)
    return _AdvisoryHeader(notice_id, title, notice_date, effective_date, announced)


def _header_columns(cells: Sequence[str]) -> dict[str, int] | None:
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = _HEADER_NAMES.get(cell.lower().rstrip(":"))
        if name is not None and name not in columns:
            columns[name] = index
    return columns if columns.keys() >= _REQUIRED_COLUMNS else None


def _advisory_row(
    header: _AdvisoryHeader, product: str, cells: Mapping[str, str], ingested: datetime
) -> dict[str, Any]:
    rate_type = " ".join(cells["rate_type"].upper().split())
    tier = cells["tier"]
    if not rate_type:
        raise ValueError("no rate type")
    if not tier:
        raise ValueError("no tier")
    amounts = {
        name: parse_amount(cells.get(name, ""))
        for name in ("current_initial", "current_maintenance", "new_initial", "new_maintenance")
    }
    new_maintenance = amounts["new_maintenance"]
    if new_maintenance is None:
        raise ValueError("no new maintenance rate")
    unit = new_maintenance.unit
    new_initial = amounts["new_initial"]
    if new_initial is not None and new_initial.unit != unit:
        raise ValueError(f"new initial in {new_initial.unit} but new maintenance in {unit}")
    old = {name: amount for name in ("current_initial", "current_maintenance") if (amount := amounts[name])}
    if len({amount.unit for amount in old.values()}) > 1:
        raise ValueError("current initial and maintenance in different units")
    # Rates in another unit than the new ones are not comparable: see the module docstring.
    comparable = {name: amount.value for name, amount in old.items() if amount.unit == unit}
    change = change_pct(comparable.get("current_maintenance"), new_maintenance.value)
    if change is not None and abs(change) > MAX_ABS_CHANGE_PCT:
        raise ValueError(f"margin change of {change:.1f}% exceeds +/-{MAX_ABS_CHANGE_PCT:.0f}%")
    return {
        "notice_id": header.notice_id,
        "product": product,
        "rate_type": rate_type,
        "tier": tier,
        "title": header.title,
        "notice_date": header.notice_date,
        "effective_date": header.effective_date,
        "ts_event": header.ts_event,
        "unit": unit,
        "old_initial": comparable.get("current_initial"),
        "new_initial": new_initial.value if new_initial else None,
        "old_maintenance": comparable.get("current_maintenance"),
        "new_maintenance": new_maintenance.value,
        "change_pct": change,
        "source": SOURCE_ADVISORY,
        "ts_ingested": ingested,
    }


# ---------------------------------------------------------------------------------------
# Clearing advisories (PDF)

# A run of words one space apart: pypdf's layout text puts two or more between table cells.
_PDF_CELL_PATTERN = re.compile(r"\S+(?: \S+)*")

_Cell = tuple[int, int, str]  # first and past-last character column of a cell, its text


def _pdf_lines(pdf: bytes) -> list[str]:
    """The text of every page, laid out: each text run at a character column proportional to its x.

    ValueError, with the reason, for a body that is not a PDF (CME's 403 page served with
    200, a truncated download) or that pypdf cannot read.
    """
    # The PDF header may follow up to 1 KiB of junk; anything else is not a PDF at all.
    if b"%PDF-" not in pdf[:1024]:
        raise ValueError(f"not a PDF, it starts with {pdf[:40]!r}")
    # pypdf reports a damaged file with whatever its parser hit (PdfReadError, KeyError, struct.error, ...).
    try:
        pages = PdfReader(BytesIO(pdf)).pages
        return [line for page in pages for line in page.extract_text(extraction_mode="layout").splitlines()]
    except Exception as error:
        raise ValueError(f"pypdf cannot read it: {type(error).__name__}: {error}") from None


def _pdf_events(lines: Iterable[str]) -> list[_Text | _Row]:
    """A PDF's layout text as the events of _PageReader, so the HTML's table reading serves it too.

    A line whose cells name the margin columns is a table's header; it may be wrapped over
    two lines ("Current" above "Initial"). A line of two or more cells after a header is a
    row of that table, its cells put under the header's columns (see _under_columns), so a
    blank cell keeps its column empty. Other lines (the heading block, section titles such
    as "COMEX 100 GOLD FUTURES (GC)", page footers) are text.
    """
    events: list[_Text | _Row] = []
    columns: list[_Cell] | None = None
    tables = 0
    previous: list[_Cell] = []
    for line in lines:
        cells = [(match.start(), match.end(), match[0]) for match in _PDF_CELL_PATTERN.finditer(line)]
        if not cells:
            continue
        header = _pdf_header(previous, cells)
        previous = cells
        if header is not None:
            columns, tables = header, tables + 1
            events.append(_Row(tables, tuple(text for _, _, text in header)))
        elif columns is None or len(cells) == 1:
            events.append(_Text(_squash(line)))
        else:
            events.append(_Row(tables, _under_columns(cells, columns)))
    return events


def _pdf_header(previous: list[_Cell], cells: list[_Cell]) -> list[_Cell] | None:
    """The header `cells` make, alone or as the second line of a header wrapped from `previous`; else None."""
    if _header_columns([text for _, _, text in cells]) is not None:
        return cells
    if not previous:
        return None
    merged = list(previous)
    for start, end, text in cells:
        index = _column_of(start, end, previous)
        left, right, above = merged[index]
        merged[index] = (min(left, start), max(right, end), f"{above} {text}")
    return merged if _header_columns([text for _, _, text in merged]) is not None else None


def _under_columns(cells: Sequence[_Cell], columns: Sequence[_Cell]) -> tuple[str, ...]:
    """The texts of a row's `cells` per column: in order when they are as many as the columns, else by position.

    Cells landing in the same column are joined, which leaves an unreadable amount for the
    row's reading to reject rather than a shifted one.
    """
    if len(cells) == len(columns):
        return tuple(text for _, _, text in cells)
    placed: list[list[str]] = [[] for _ in columns]
    for start, end, text in cells:
        placed[_column_of(start, end, columns)].append(text)
    return tuple(" ".join(texts) for texts in placed)


def _column_of(start: int, end: int, columns: Sequence[_Cell]) -> int:
    """The column a cell overlaps most, or the nearest one when it overlaps none.

    Not the one it starts in: pypdf's character columns are approximate, and amounts are
    right-aligned under left-aligned headers, so an amount may start or end a character or
    two past its header's edges.
    """
    # Overlap when positive, minus the gap when not: the largest is the best column either way.
    return max(range(len(columns)), key=lambda index: min(end, columns[index][1]) - max(start, columns[index][0]))


_DATE_FORMATS = ("%d %B %Y", "%B %d %Y", "%d %b %Y", "%b %d %Y", "%m/%d/%Y", "%Y-%m-%d")


def parse_date_time(text: str) -> tuple[date, time | None]:
    """'11 June 2020', 'Friday, June 12th, 2020', '06/11/2020 4:30 PM CT' -> (date, time or None)."""
    cleaned = " ".join(text.replace(",", " ").split())
    clock: time | None = None
    found = re.search(r"\b(\d{1,2}):(\d{2})(?:\s*([AaPp])\.?[Mm]\.?)?", cleaned)
    if found:
        hour, minute = int(found[1]), int(found[2])
        if found[3]:
            hour = hour % 12 + (12 if found[3].lower() == "p" else 0)
        if hour > 23 or minute > 59:
            raise ValueError(f"not a time of day: {text!r}")
        clock = time(hour, minute)
        cleaned = cleaned[: found.start()] + cleaned[found.end() :]
    cleaned = re.sub(r"\b(?:CT|CST|CDT|Chicago time)\b", "", cleaned, flags=re.IGNORECASE)
    cleaned = re.sub(r"^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day\s+", "", cleaned.strip(), flags=re.IGNORECASE)
    cleaned = re.sub(r"\b(\d{1,2})(?:st|nd|rd|th)\b", r"\1", cleaned)
    cleaned = " ".join(cleaned.replace(".", " ").split())
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).date(), clock  # noqa: DTZ007 - a calendar date, no zone
        except ValueError:
            continue
    raise ValueError(f"not a date: {text!r}")


def _field(texts: Sequence[str], label: str) -> str | None:
    """The value after a label chunk ("Notice Date" then "11 June 2020"), or inline ("Notice Date: ...")."""
    wanted = label.lower()
    for index, text in enumerate(texts):
        lowered = text.lower()
        if lowered.rstrip(": ") == wanted:
            return next((value for value in texts[index + 1 :] if value.strip()), None)
        if lowered.startswith(wanted + ":"):
            value = text[len(label) + 1 :].strip()
            if value:
                return value
    return None


# ---------------------------------------------------------------------------------------
# Fetch


def fetch_cme(
    client: HttpClient,
    products: Collection[str],
    previous_snapshot: pl.DataFrame | None,
    advisory_urls: Sequence[str],
    observed_at: datetime,
    ingested_at: datetime,
    *,
    window: Window | None = None,
) -> FeedBatch:
    """The current margins of `products`, their changes since `previous_snapshot`, and the advisories.

    - `margin_rates`: the snapshot, every row stamped `observed_at`.
    - `margin_notices`: snapshot diffs against `previous_snapshot` (`margin_rates` rows the
      caller read from the warehouse; None or empty on the first run) plus the rows of
      each advisory in `advisory_urls` (absolute, or paths under the client's base URL),
      read from its PDF, fetched with the same client, when the page has no table.
    - `rejected`: unreadable rows, implausible changes, and whole answers that were
      malformed (one product's JSON, one advisory page), so the other answers still load.

    A backfill (`window`) keeps the advisories' notices dated in it, and asks for the
    snapshot, which has no history, only when the window reaches `observed_at`; it notes
    both limits.

    HTTP errors propagate: FeedUnavailable (CME's 403 to scrapers, timeouts) and
    RateLimited, since CME blocks whole hosts rather than pages and the run is then
    degraded; FeedError for another status, such as a 404 for a wrong advisory address.
    An advisory's PDF is the exception: its page was served, so a refused PDF rejects
    that advisory with the HTTP error as the reason, and the run goes on.
    """
    batch = FeedBatch(
        FEED,
        {"margin_rates": _frame((), MARGIN_RATES_SCHEMA), "margin_notices": _frame((), MARGIN_NOTICES_SCHEMA)},
    )
    if window is None or window.end >= observed_at:
        batch.extend(_margin_snapshot(client, products, previous_snapshot, observed_at, ingested_at))
    advisories = FeedBatch(FEED, {"margin_notices": _frame((), MARGIN_NOTICES_SCHEMA)})
    for url in advisory_urls:
        response = client.request("GET", url)
        try:
            advisories.extend(
                parse_advisory(
                    _decoded(response),
                    url=url,
                    ingested_at=ingested_at,
                    products=products,
                    fetch_pdf=lambda pdf_url: client.request("GET", pdf_url).content,
                )
            )
        except MalformedResponse as error:
            advisories.rejected.append(Rejected(error.payload, str(error)))
    if window is not None:
        advisories.tables["margin_notices"] = window.cut(advisories.tables["margin_notices"])
        advisories.notes += [
            current_only_note(window, observed_at, "the margins service gives only the current margins"),
            f"CME publishes no index of its clearing advisories: only the {len(advisory_urls)} configured"
            " advisory pages are read",
        ]
    batch.extend(advisories)
    return batch


def _margin_snapshot(
    client: HttpClient,
    products: Collection[str],
    previous_snapshot: pl.DataFrame | None,
    observed_at: datetime,
    ingested_at: datetime,
) -> FeedBatch:
    """The margins service's current rates of `products`, and their changes since `previous_snapshot`."""
    batch = FeedBatch(FEED, {"margin_rates": _frame((), MARGIN_RATES_SCHEMA)})
    for product in products:
        page = 1
        while page <= MAX_MARGIN_PAGES:
            try:
                payload = client.get_json(MARGINS_PATH, params=margins_query(product, page))
                batch.extend(
                    parse_margin_rates(payload, observed_at=observed_at, ingested_at=ingested_at, products=[product])
                )
            except MalformedResponse as error:
                batch.rejected.append(Rejected(error.payload, str(error)))
                break
            if page >= margin_page_total(payload):
                break
            page += 1
    diffs, implausible = split_implausible_changes(
        diff_margin_snapshots(previous_snapshot, batch.tables["margin_rates"], ingested_at=ingested_at)
    )
    batch.extend(FeedBatch(FEED, {"margin_notices": diffs}, implausible))
    return batch


def _decoded(response: requests.Response) -> str:
    # requests assumes ISO-8859-1 for text/html without a charset; CME's pages are UTF-8.
    declared = "charset" in response.headers.get("Content-Type", "").lower()
    return response.content.decode(response.encoding if declared and response.encoding else "utf-8", "replace")


# ---------------------------------------------------------------------------------------
# Helpers


def _frame(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=dict(schema))


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, bool) else str(value).strip()


def _squash(text: str) -> str:
    return " ".join(text.split())
