"""Scheduled macro events (BLS releases, FOMC statements, FRED release dates) -> economic_events.

Three independent sources, each its own fetch so one being down never hides the others; the
same event may arrive from two of them (the table's key includes `source`). Every source
publishes New York wall-clock times, converted here with zoneinfo so DST is right on both
sides of the March and November switches.

fred_get_json is shared with adapters.vol_credit: it always asks for JSON (FRED's default
is XML), turns FRED's error bodies into FeedErrors, and keeps the API key out of every
message and quarantined payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from adapters.feed import FeedBatch, FeedError, MalformedResponse, Rejected, aware_utc, payload_text
from adapters.http import HttpClient
from adapters.tables import TABLE_SCHEMAS
from adapters.window import Window, keep_window

NEW_YORK = ZoneInfo("America/New_York")
TABLE = "economic_events"

BLS_FEED = "bls"
FOMC_FEED = "fomc"
FRED_FEED = "fred"

BLS_ICS_PATH = "/schedule/news_release/bls.ics"
FOMC_CALENDAR_PATH = "/monetarypolicy/fomccalendars.htm"
FRED_RELEASE_DATES_PATH = "/fred/release/dates"

EVENT_SCHEMA = TABLE_SCHEMAS["economic_events"]


@dataclass(frozen=True)
class ReleaseKind:
    event_type: str
    importance: int


# Matched against the release name, i.e. the SUMMARY before its last " for <period>".
# NFP and CPI move every asset class; PPI, JOLTS and retail sales move rates and the dollar
# often enough to rank above the long tail, which keeps its own name and importance 1.
# Retail sales is a Census release, listed so a calendar that carries it ranks it the same.
BLS_RELEASES: dict[str, ReleaseKind] = {
    "employment situation": ReleaseKind("NFP", 3),
    "consumer price index": ReleaseKind("CPI", 3),
    "producer price index": ReleaseKind("PPI", 2),
    "job openings and labor turnover survey": ReleaseKind("JOLTS", 2),
    "retail sales": ReleaseKind("RETAIL_SALES", 2),
}
OTHER_RELEASE_IMPORTANCE = 1

# BLS's own VTIMEZONE names the zone "US-Eastern"; other exporters write the Windows name.
# All mean US Eastern time, whose full rule history only the IANA database has.
EASTERN_TZIDS = frozenset({"us-eastern", "us/eastern", "america/new_york", "eastern standard time", "est5edt"})


@dataclass(frozen=True)
class FredRelease:
    event_type: str
    title: str
    local_time: time
    importance: int


# Both releases come out at 08:30 New York. A release missing here is still kept, all-day,
# since FRED gives dates only and a guessed time would be planned around.
FRED_RELEASES: dict[int, FredRelease] = {
    10: FredRelease("CPI", "Consumer Price Index", time(8, 30), 3),
    50: FredRelease("NFP", "Employment Situation", time(8, 30), 3),
}
FRED_ERROR_STATUS = frozenset({400, 404})

FOMC_STATEMENT_TIME = time(14, 0)
FOMC_IMPORTANCE = 3


# --- BLS release calendar (iCalendar) ---------------------------------------------------


def fetch_bls_calendar(client: HttpClient, ingested_at: datetime, *, window: Window | None = None) -> FeedBatch:
    """BLS's release schedule; BLS refuses clients without a User-Agent naming a contact.

    The file holds the current schedule only: a backfill (`window`) keeps the window's
    releases and notes the part of the window before the file's first."""
    response = client.request("GET", BLS_ICS_PATH, headers={"Accept": "text/calendar"})
    batch = parse_bls_ics(_decode(response.content), ingested_at)
    return keep_window(batch, TABLE, window, "the BLS calendar holds its current schedule only")


def parse_bls_ics(text: str, ingested_at: datetime) -> FeedBatch:
    stamp = aware_utc(ingested_at)
    body = text.lstrip("\ufeff \t\r\n")
    if not body.upper().startswith("BEGIN:VCALENDAR"):
        raise MalformedResponse(BLS_FEED, "body is not an iCalendar file", text[:100_000])
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for event in _vevents(_unfold(body)):
        if isinstance(event, Rejected):
            rejected.append(event)
            continue
        row = _bls_row(event, stamp)
        if isinstance(row, Rejected):
            rejected.append(row)
        elif row is not None:
            rows.append(row)
    return _batch(BLS_FEED, rows, rejected)


@dataclass(frozen=True)
class _Property:
    name: str
    params: dict[str, str]
    value: str


@dataclass(frozen=True)
class _VEvent:
    raw: str
    properties: dict[str, _Property]


def _decode(content: bytes) -> str:
    # requests assumes ISO-8859-1 for text/* without a charset; iCalendar is UTF-8 (RFC 5545).
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def _unfold(text: str) -> list[str]:
    """Content lines with RFC 5545 folding undone: a line break followed by a space or tab continues."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"\n[ \t]", "", normalised).split("\n")


def _vevents(lines: Iterable[str]) -> Iterator[_VEvent | Rejected]:
    """Each VEVENT with its own properties; those of nested components (VALARM) are not its own."""
    stack: list[str] = []
    raw: list[str] = []
    properties: dict[str, _Property] = {}
    for line in lines:
        if not line.strip():
            continue
        prop = _content_line(line)
        name = prop.name if prop is not None else ""
        component = prop.value.strip().upper() if prop is not None and name in ("BEGIN", "END") else ""
        if name == "BEGIN":
            if component == "VEVENT" and "VEVENT" not in stack:
                raw, properties = [], {}
            stack.append(component)
        if "VEVENT" in stack:
            raw.append(line)
            if prop is not None and not component and stack[-1] == "VEVENT":
                # The first occurrence wins: RFC 5545 allows SUMMARY and DTSTART once per event.
                properties.setdefault(name, prop)
        if name == "END" and component in stack:
            del stack[len(stack) - 1 - stack[::-1].index(component) :]
            if component == "VEVENT":
                yield _VEvent("\n".join(raw), properties)
    if "VEVENT" in stack:
        yield Rejected.of("\n".join(raw), "VEVENT not closed before the end of the file (truncated download?)")


def _content_line(line: str) -> _Property | None:
    """`NAME;PARAM=VALUE;...:value`, splitting only on separators outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in ";:":
            parts.append("".join(current))
            current = []
            if char == ":":
                name, *params = parts
                parsed = {}
                for param in params:
                    key, _, value = param.partition("=")
                    parsed[key.strip().upper()] = value.strip().strip('"')
                return _Property(name.strip().upper(), parsed, line[index + 1 :])
            continue
        current.append(char)
    return None


def _ics_text(value: str) -> str:
    """Undo RFC 5545 TEXT escaping: \\, \\; \\\\ and \\n."""
    return re.sub(r"\\([\\;,nN])", lambda match: "\n" if match[1] in "nN" else match[1], value)


def _bls_row(event: _VEvent, ingested_at: datetime) -> dict[str, Any] | Rejected | None:
    status = event.properties.get("STATUS")
    if status is not None and status.value.strip().upper() == "CANCELLED":
        return None
    summary = event.properties.get("SUMMARY")
    if summary is None or not _ics_text(summary.value).strip():
        return Rejected.of(event.raw, "VEVENT has no SUMMARY")
    title = " ".join(_ics_text(summary.value).split())
    start = event.properties.get("DTSTART")
    if start is None:
        return Rejected.of(event.raw, "VEVENT has no DTSTART")
    moment = _ics_start(start)
    if isinstance(moment, str):
        return Rejected.of(event.raw, moment)
    ts_event, all_day = moment
    release, _, _ = title.rpartition(" for ")
    name = release or title
    kind = BLS_RELEASES.get(name.lower(), ReleaseKind(name, OTHER_RELEASE_IMPORTANCE))
    return _row(BLS_FEED, kind.event_type, ts_event, title, kind.importance, all_day, ingested_at)


_ICS_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_ICS_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)", re.IGNORECASE)


def _ics_start(start: _Property) -> tuple[datetime, bool] | str:
    """(UTC time, all_day) of a DTSTART, or the reason it cannot be used."""
    value = start.value.strip()
    day_match = _ICS_DATE.fullmatch(value)
    if start.params.get("VALUE", "").upper() == "DATE" or day_match:
        if day_match is None:
            return f"DTSTART {value!r} is not an iCalendar date (YYYYMMDD)"
        try:
            day = date(*map(int, day_match.groups()))
        except ValueError as error:
            return f"DTSTART {value!r}: {error}"
        return new_york_to_utc(day, time(0, 0)), True
    match = _ICS_DATE_TIME.fullmatch(value)
    if match is None:
        return f"DTSTART {value!r} is not an iCalendar date-time (YYYYMMDDTHHMMSS)"
    if match[7]:
        zone: ZoneInfo | None = ZoneInfo("UTC")
    else:
        # A time without TZID is "floating"; BLS schedules in New York time.
        tzid = start.params.get("TZID", "America/New_York")
        zone = _zone(tzid)
        if zone is None:
            return f"DTSTART TZID {tzid!r} is not a known time zone"
    try:
        year, month, day_of_month, hour, minute, second = (int(part) for part in match.groups()[:6])
        local = datetime(year, month, day_of_month, hour, minute, second, tzinfo=zone)
    except ValueError as error:
        return f"DTSTART {value!r}: {error}"
    return local.astimezone(UTC), False


def _zone(tzid: str) -> ZoneInfo | None:
    if tzid.strip().lower() in EASTERN_TZIDS:
        return NEW_YORK
    try:
        return ZoneInfo(tzid.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- FOMC meeting calendar (HTML) -------------------------------------------------------


def fetch_fomc_calendar(client: HttpClient, ingested_at: datetime, *, window: Window | None = None) -> FeedBatch:
    """The Fed's calendar page, which lists the last five years' meetings and the next year's:
    a backfill (`window`) keeps the window's meetings and notes what lies before the page's first."""
    response = client.request("GET", FOMC_CALENDAR_PATH, headers={"Accept": "text/html"})
    batch = parse_fomc_html(_decode(response.content), ingested_at)
    return keep_window(batch, TABLE, window, "the FOMC calendar page lists the last five years only")


def parse_fomc_html(html: str, ingested_at: datetime) -> FeedBatch:
    """Scheduled meetings -> one event at the statement, 14:00 New York on the meeting's last day."""
    stamp = aware_utc(ingested_at)
    parser = _FomcPageParser()
    parser.feed(html)
    parser.close()
    if not parser.years_seen:
        raise MalformedResponse(FOMC_FEED, "no 'YYYY FOMC Meetings' panel on the page", html[:100_000])
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for meeting in parser.meetings:
        row = _fomc_row(meeting, stamp)
        if isinstance(row, Rejected):
            rejected.append(row)
        elif row is not None:
            rows.append(row)
    return _batch(FOMC_FEED, rows, rejected)


@dataclass(frozen=True)
class _Meeting:
    year: int | None
    month: str | None
    date: str

    def as_item(self) -> dict[str, Any]:
        return {"year": self.year, "month": self.month, "date": self.date}


_VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_YEAR_HEADING = re.compile(r"(\d{4})\s+FOMC\s+Meetings", re.IGNORECASE)
_MONTH_CLASS = "fomc-meeting__month"
_DATE_CLASS = "fomc-meeting__date"


class _FomcPageParser(HTMLParser):
    """Collects (year, month text, date text) in page order.

    The page puts a year's heading before its meetings, and each meeting's month cell before
    its date cell, so document order is enough to pair them without building a tree.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.years_seen: list[int] = []
        self.meetings: list[_Meeting] = []
        self._year: int | None = None
        self._month: str | None = None
        self._capturing: str | None = None
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._capturing is not None:
            if tag not in _VOID_ELEMENTS:
                self._depth += 1
            return
        classes = " ".join(value or "" for name, value in attrs if name == "class").split()
        for wanted in (_MONTH_CLASS, _DATE_CLASS):
            if wanted in classes and tag not in _VOID_ELEMENTS:
                self._capturing, self._depth, self._text = wanted, 1, []
                return

    def handle_endtag(self, tag: str) -> None:
        if self._capturing is None or tag in _VOID_ELEMENTS:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        text = " ".join("".join(self._text).split())
        if self._capturing == _MONTH_CLASS:
            self._month = text
        else:
            self.meetings.append(_Meeting(self._year, self._month, text))
            self._month = None
        self._capturing = None

    def handle_data(self, data: str) -> None:
        if self._capturing is not None:
            self._text.append(data)
            return
        heading = _YEAR_HEADING.fullmatch(data.strip())
        if heading:
            self._year = int(heading[1])
            self._month = None
            self.years_seen.append(self._year)


_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# "27-28", "16-17*" (with projections), "30-1" (across two months), "15 (unscheduled)".
_FOMC_DATE = re.compile(
    r"(?P<first>\d{1,2})(?:\s*[-–]\s*(?P<last>\d{1,2}))?\s*(?P<projections>\*)?\s*(?P<unscheduled>\(unscheduled\))?",
    re.IGNORECASE,
)


def _fomc_row(meeting: _Meeting, ingested_at: datetime) -> dict[str, Any] | Rejected | None:
    # A notation vote is a poll by email: no meeting, no 14:00 statement to trade around.
    if "notation vote" in meeting.date.lower():
        return None
    if meeting.year is None:
        return Rejected.of(meeting.as_item(), "meeting listed before any 'YYYY FOMC Meetings' heading")
    if not meeting.month:
        return Rejected.of(meeting.as_item(), "meeting has no month cell")
    match = _FOMC_DATE.fullmatch(meeting.date)
    if match is None:
        return Rejected.of(meeting.as_item(), f"meeting date {meeting.date!r} is not 'D', 'D-D' or 'D-D*'")
    names = meeting.month.split("/")
    months = [number for number in map(_month_number, names) if number is not None]
    if len(months) != len(names) or len(months) > 2:
        return Rejected.of(meeting.as_item(), f"month {meeting.month!r} is not one or two month names")
    first_month, last_month = months[0], months[-1]
    first_day = int(match["first"])
    last_day = int(match["last"] or first_day)
    if last_month == first_month and last_day < first_day:
        return Rejected.of(meeting.as_item(), f"days {meeting.date!r} run backwards within {meeting.month!r}")
    # "Dec/Jan" would end in the next year; the panel's year is the year the meeting starts.
    last_year = meeting.year + 1 if last_month < first_month else meeting.year
    try:
        start = date(meeting.year, first_month, first_day)
        end = date(last_year, last_month, last_day)
    except ValueError as error:
        return Rejected.of(meeting.as_item(), f"no such meeting day: {error}")
    if match["unscheduled"]:
        # Unscheduled meetings announce at no fixed hour; only the day is certain.
        title = f"FOMC unscheduled meeting {end.isoformat()}"
        return _row(FOMC_FEED, "FOMC", new_york_to_utc(end, time(0, 0)), title, FOMC_IMPORTANCE, True, ingested_at)
    span = end.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
    title = f"FOMC statement, meeting {span}"
    if match["projections"]:
        title += ", with Summary of Economic Projections"
    ts_event = new_york_to_utc(end, FOMC_STATEMENT_TIME)
    return _row(FOMC_FEED, "FOMC", ts_event, title, FOMC_IMPORTANCE, False, ingested_at)


def _month_number(name: str) -> int | None:
    """1..12 for a month name or an abbreviation of at least three letters ("Apr", "Sept")."""
    key = name.strip().rstrip(".").lower()
    if len(key) < 3:
        return None
    for number, month in enumerate(_MONTHS, start=1):
        if month.startswith(key):
            return number
    return None


# --- FRED release dates (JSON) ----------------------------------------------------------


def fetch_fred_release_dates(
    client: HttpClient,
    api_key: str | None,
    ingested_at: datetime,
    *,
    release_ids: Sequence[int] = tuple(FRED_RELEASES),
    since: date | None = None,
    window: Window | None = None,
) -> FeedBatch:
    """Past and scheduled dates of each release; nothing is requested without an API key.

    FRED returns only dates that already have data unless asked for the others, and the
    future ones are the point here. `since` bounds the answer (FRED's realtime_start); a
    backfill's `window` bounds it on both sides and keeps exactly the window's releases.
    """
    batch = FeedBatch(feed=FRED_FEED, tables={TABLE: pl.DataFrame(schema=EVENT_SCHEMA)})
    if not api_key:
        return batch
    for release_id in release_ids:
        params: dict[str, Any] = {"release_id": release_id, "include_release_dates_with_no_data": "true"}
        if window is not None:
            first, last = window.days()
            params |= {"realtime_start": first.isoformat(), "realtime_end": last.isoformat()}
        elif since is not None:
            params["realtime_start"] = since.isoformat()
        for payload in fred_pages(client, FRED_RELEASE_DATES_PATH, api_key, params):
            batch.extend(parse_fred_release_dates(payload, ingested_at))
    if window is not None:
        batch.tables[TABLE] = window.cut(batch.tables[TABLE])
    return batch


def parse_fred_release_dates(payload: Any, ingested_at: datetime) -> FeedBatch:
    stamp = aware_utc(ingested_at)
    items = payload.get("release_dates") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise MalformedResponse(FRED_FEED, "no 'release_dates' list in the answer", payload_text(payload))
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for item in items:
        row = _fred_release_row(item, stamp)
        if isinstance(row, Rejected):
            rejected.append(row)
        else:
            rows.append(row)
    return _batch(FRED_FEED, rows, rejected)


def _fred_release_row(item: Any, ingested_at: datetime) -> dict[str, Any] | Rejected:
    if not isinstance(item, dict):
        return Rejected.of(item, "release date item is not an object")
    release_id = item.get("release_id")
    if isinstance(release_id, bool) or not isinstance(release_id, int):
        return Rejected.of(item, f"release_id {release_id!r} is not an integer")
    day = parse_iso_date(item.get("date"))
    if day is None:
        return Rejected.of(item, f"date {item.get('date')!r} is not YYYY-MM-DD")
    known = FRED_RELEASES.get(release_id)
    if known is not None:
        ts_event = new_york_to_utc(day, known.local_time)
        return _row(FRED_FEED, known.event_type, ts_event, known.title, known.importance, False, ingested_at)
    name = item.get("release_name")
    title = name.strip() if isinstance(name, str) and name.strip() else f"FRED release {release_id}"
    ts_event = new_york_to_utc(day, time(0, 0))
    return _row(FRED_FEED, title, ts_event, title, OTHER_RELEASE_IMPORTANCE, True, ingested_at)


def fred_pages(client: HttpClient, path: str, api_key: str, params: dict[str, Any]) -> Iterator[Any]:
    """Every page of a FRED list answer (release dates, observations): FRED answers with at
    most `limit` items from `offset` and says how many there are (`count`), so the next page
    is asked for until the offset passes the count. The first request sends no offset."""
    offset = 0
    while True:
        payload = fred_get_json(client, path, api_key, params if offset == 0 else {**params, "offset": offset})
        yield payload
        count = payload.get("count") if isinstance(payload, dict) else None
        limit = payload.get("limit") if isinstance(payload, dict) else None
        if not isinstance(count, int) or not isinstance(limit, int) or limit <= 0:
            return
        offset += limit
        if offset >= count:
            return


def fred_get_json(client: HttpClient, path: str, api_key: str, params: dict[str, Any]) -> Any:
    """FRED's JSON answer to GET `path`, or a FeedError that never contains `api_key`.

    FRED reports bad requests (unknown series, unregistered key) as 400/404 with a JSON body
    `{"error_code", "error_message"}`; those statuses are accepted here so the message can be
    read. The key travels only in the query string, which no message below includes.
    """
    sent = {**params, "api_key": api_key, "file_type": "json"}
    try:
        response = client.request("GET", path, params=sent, accept_status=FRED_ERROR_STATUS)
    except FeedError as error:
        # HttpClient names the path only, but a body quoted into the message may echo the URL.
        raise _without_secret(error, api_key) from None
    try:
        payload = json.loads(response.content)
    except ValueError:
        # The shared json_body would put response.url, api_key included, into the message.
        kind = response.headers.get("Content-Type", "unknown content type")
        raise MalformedResponse(
            client.feed, f"GET {path}: body is not JSON ({kind})", _redact(response.text[:100_000], api_key)
        ) from None
    if isinstance(payload, dict) and "error_code" in payload:
        message = f"GET {path}: FRED error {payload.get('error_code')}: {payload.get('error_message', '')}"
        raise FeedError(client.feed, _redact(message, api_key))
    if response.status_code in FRED_ERROR_STATUS:
        raise FeedError(
            client.feed, _redact(f"GET {path}: HTTP {response.status_code} {payload_text(payload)[:200]}", api_key)
        )
    return payload


def _without_secret(error: FeedError, secret: str) -> FeedError:
    error.args = tuple(_redact(arg, secret) if isinstance(arg, str) else arg for arg in error.args)
    if isinstance(error, MalformedResponse):
        error.payload = _redact(error.payload, secret)
    return error


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


# --- shared -----------------------------------------------------------------------------


def parse_iso_date(value: Any) -> date | None:
    """A strict YYYY-MM-DD date; fromisoformat alone would also take '20260812' or '2026-W33-3'."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def new_york_to_utc(day: date, local_time: time) -> datetime:
    return datetime.combine(day, local_time, tzinfo=NEW_YORK).astimezone(UTC)


def _row(
    source: str, event_type: str, ts_event: datetime, title: str, importance: int, all_day: bool, ingested_at: datetime
) -> dict[str, Any]:
    return {
        "source": source,
        "event_type": event_type,
        "ts_event": ts_event,
        "title": title,
        "importance": importance,
        "all_day": all_day,
        "ts_ingested": ingested_at,
    }


def _batch(feed: str, rows: list[dict[str, Any]], rejected: list[Rejected]) -> FeedBatch:
    return FeedBatch(feed=feed, tables={TABLE: pl.DataFrame(rows, schema=EVENT_SCHEMA)}, rejected=rejected)
