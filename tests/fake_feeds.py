"""Local servers that keep a generated history in each source's real format and answer the
way the source does (FEEDS.md): Alpaca's inclusive `end` and page tokens, Binance's
startTime/endTime/limit and its 30 days of open-interest history, FRED's observation range
in limit/offset pages, GitHub's newest-first release pages with Link headers and ETags,
CBOE's whole-history CSV, SGE's and LBMA's whole histories, an RSS feed of recent items.
Each history is generated as of NOW, the ingestion time the tests pass in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FRED_KEY = "0123456789abcdef0123456789abcdef"
REPO = "openai/openai-python"


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // MS


def from_ms(value: int) -> datetime:
    return EPOCH + value * MS


def weekdays(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


class AlpacaBars:
    """Alpaca's bars endpoints over a generated history: `start` and `end` inclusive, pages of
    at most `page_size` bars (symbol by symbol, oldest first) with a `next_page_token`."""

    def __init__(self, page_size: int = 400, seconds_per_day: float = 0.0) -> None:
        self.page_size = page_size
        self.seconds_per_day = seconds_per_day  # how long the server takes per day asked for

    @staticmethod
    def times(symbol: str, timeframe: str, start: datetime, end: datetime) -> list[datetime]:
        crypto = "/" in symbol
        found: list[datetime] = []
        day = start.date()
        while day <= end.date():
            if crypto or day.weekday() < 5:
                midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
                if timeframe == "1Day":
                    stamps = [midnight + timedelta(hours=5)]
                elif crypto:
                    stamps = [midnight + timedelta(minutes=m) for m in range(24 * 60)]
                else:
                    stamps = [midnight + timedelta(hours=14, minutes=30 + m) for m in range(390)]
                found += [stamp for stamp in stamps if start <= stamp <= end]
            day += timedelta(days=1)
        return found

    def respond(self, sent: Request) -> Response:
        start = datetime.fromisoformat(sent.args["start"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(sent.args["end"].replace("Z", "+00:00")) if "end" in sent.args else NOW
        time.sleep(self.seconds_per_day * (end - start) / timedelta(days=1))
        timeframe = sent.args["timeframe"]
        rows = [(s, t) for s in sent.args["symbols"].split(",") for t in self.times(s, timeframe, start, end)]
        offset = int(sent.args.get("page_token") or 0)
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, stamp in rows[offset : offset + self.page_size]:
            bars.setdefault(symbol, []).append(
                {"t": f"{stamp:%Y-%m-%dT%H:%M:%SZ}", "o": 100.0, "h": 101.0, "l": 99.0, "c": 100.5, "v": 1200.0}
                | {"n": 12, "vw": 100.2}
            )
        more = offset + self.page_size < len(rows)
        body = {"bars": bars, "next_page_token": str(offset + self.page_size) if more else None}
        return Response(json.dumps(body), content_type="application/json")


def serve_bars(server: HTTPServer, bars: AlpacaBars) -> None:
    server.expect_request("/v2/stocks/bars").respond_with_handler(bars.respond)
    server.expect_request("/v1beta3/crypto/us/bars").respond_with_handler(bars.respond)


LISTED = {"BTCUSDT": datetime(2019, 9, 10, 8, tzinfo=UTC), "ETHUSDT": datetime(2019, 11, 27, 8, tzinfo=UTC)}
FUNDING_INTERVAL = timedelta(hours=8)
OPEN_INTEREST_KEPT = timedelta(days=30)


class Binance:
    """Binance USD-M's public endpoints over a generated history, with Binance's own rules:
    funding from the contract's listing, at most `limit` rows from startTime (without one,
    the most recent `limit`); open-interest history of the last 30 days only (an older
    startTime is a 400); live figures at NOW. The symbols in `timing_out` answer 504."""

    def __init__(self) -> None:
        self.timing_out: set[str] = set()

    @staticmethod
    def funding_times(symbol: str) -> list[datetime]:
        first = LISTED[symbol]
        return [first + i * FUNDING_INTERVAL for i in range((NOW - first) // FUNDING_INTERVAL + 1)]

    def funding(self, sent: Request) -> Response:
        symbol = sent.args["symbol"]
        if symbol in self.timing_out:
            return Response("upstream timed out", status=504)
        start = from_ms(int(sent.args.get("startTime", 0)))
        end = from_ms(int(sent.args["endTime"])) if "endTime" in sent.args else NOW
        limit = min(int(sent.args.get("limit", 100)), 1000)
        rows = [t for t in self.funding_times(symbol) if start <= t <= end]
        rows = rows[:limit] if "startTime" in sent.args else rows[-limit:]
        body = [
            {"symbol": symbol, "fundingRate": "0.00010000", "fundingTime": ms(t), "markPrice": "43000.10000000"}
            for t in rows
        ]
        return Response(json.dumps(body), content_type="application/json")

    def open_interest_history(self, sent: Request) -> Response:
        symbol, start, end = sent.args["symbol"], int(sent.args["startTime"]), int(sent.args["endTime"])
        if from_ms(start) < NOW - OPEN_INTEREST_KEPT:
            return Response(json.dumps({"code": -1130, "msg": "startTime is invalid"}), status=400)
        step = timedelta(minutes=5)
        first = NOW - OPEN_INTEREST_KEPT
        stamps = [first + i * step for i in range(OPEN_INTEREST_KEPT // step + 1)]
        rows = [t for t in stamps if start <= ms(t) <= end][: int(sent.args["limit"])]
        body = [
            {"symbol": symbol, "sumOpenInterest": "80000.5", "sumOpenInterestValue": "5000000000.1", "timestamp": ms(t)}
            for t in rows
        ]
        return Response(json.dumps(body), content_type="application/json")

    @staticmethod
    def premium_index(sent: Request) -> Response:
        symbol = sent.args["symbol"]
        body: dict[str, Any] = {"symbol": symbol, "markPrice": "43000.1", "indexPrice": "42990.5"}
        body |= {"estimatedSettlePrice": "42995.0"}
        body |= {"lastFundingRate": "0.00010000", "nextFundingTime": ms(NOW + timedelta(hours=1))}
        body |= {"interestRate": "0.00010000", "time": ms(NOW)}
        return Response(json.dumps(body), content_type="application/json")

    @staticmethod
    def open_interest(sent: Request) -> Response:
        body = {"openInterest": "80001.5", "symbol": sent.args["symbol"], "time": ms(NOW)}
        return Response(json.dumps(body), content_type="application/json")


def serve_binance(server: HTTPServer, binance: Binance | None = None) -> Binance:
    binance = binance or Binance()
    server.expect_request("/fapi/v1/fundingRate").respond_with_handler(binance.funding)
    server.expect_request("/futures/data/openInterestHist").respond_with_handler(binance.open_interest_history)
    server.expect_request("/fapi/v1/premiumIndex").respond_with_handler(binance.premium_index)
    server.expect_request("/fapi/v1/openInterest").respond_with_handler(binance.open_interest)
    return binance


FRED_STARTS = {"DEXCHUS": date(1981, 1, 2), "VIXCLS": date(1990, 1, 2), "BAMLH0A0HYM2": date(2023, 12, 7)}
FRED_PAGE = 1000


class Fred:
    """FRED's observations over generated daily series: the observation range is inclusive,
    answers come in pages of `limit` from `offset` with the `count` of the whole range. FRED
    keeps only the last three years of the ICE BofA spreads."""

    def observations(self, sent: Request) -> Response:
        assert sent.args["api_key"] == FRED_KEY and sent.args["file_type"] == "json"
        series = sent.args["series_id"]
        first = max(FRED_STARTS[series], date.fromisoformat(sent.args.get("observation_start", "1776-07-04")))
        last = min(NOW.date(), date.fromisoformat(sent.args.get("observation_end", "9999-12-31")))
        days = list(weekdays(first, last))
        offset = int(sent.args.get("offset", 0))
        rows = [{"date": day.isoformat(), "value": "6.9000" if series == "DEXCHUS" else "20.5"} for day in days]
        body = {"count": len(rows), "offset": offset, "limit": FRED_PAGE, "observations": rows[offset:][:FRED_PAGE]}
        return Response(json.dumps(body), content_type="application/json")


def vix_history_csv() -> str:
    lines = ["DATE,OPEN,HIGH,LOW,CLOSE"]
    lines += [f"{day:%m/%d/%Y},20.1,21.0,19.5,20.4" for day in weekdays(date(1990, 1, 2), NOW.date())]
    return "\n".join(lines) + "\n"


def serve_fred_and_cboe(server: HTTPServer) -> None:
    server.expect_request("/fred/series/observations").respond_with_handler(Fred().observations)
    server.expect_request("/api/global/us_indices/daily_prices/VIX_History.csv").respond_with_data(
        vix_history_csv(), content_type="text/csv"
    )


def sge_history() -> dict[str, list[list[float]]]:
    days = list(weekdays(date(2016, 4, 19), NOW.date()))
    # A fixing's timestamp is its Beijing midnight in UTC milliseconds.
    stamps = [ms(datetime(d.year, d.month, d.day, tzinfo=UTC) - timedelta(hours=8)) for d in days]
    return {"zp": [[stamp, 289.0] for stamp in stamps], "wp": [[stamp, 289.5] for stamp in stamps]}


def lbma_history() -> list[dict[str, Any]]:
    return [{"d": day.isoformat(), "v": [1300.0, 1000.0, 1100.0]} for day in weekdays(date(1968, 4, 1), NOW.date())]


RELEASES = [  # newest first, as GitHub lists them: one a week for five years
    datetime(2025, 10, 6, 17, tzinfo=UTC) - timedelta(weeks=week) for week in range(250)
]
ETAG = 'W/"releases-page-1"'


class GitHub:
    """GET /repos/{repo}/releases: newest first, `per_page` a page, a Link header to the next
    and last pages, an ETag on page 1 (304 to a matching If-None-Match); GET /repos/{repo}."""

    def releases(self, sent: Request) -> Response:
        if sent.headers.get("If-None-Match") == ETAG:
            return Response(status=304)
        per_page, page = int(sent.args["per_page"]), int(sent.args.get("page", 1))
        items = [
            {
                "id": 1_000_000 + index,
                "tag_name": f"v1.{250 - index}.0",
                "name": f"v1.{250 - index}.0",
                "draft": False,
                "prerelease": False,
                "created_at": f"{published - timedelta(seconds=30):%Y-%m-%dT%H:%M:%SZ}",
                "published_at": f"{published:%Y-%m-%dT%H:%M:%SZ}",
                "html_url": f"https://github.com/{REPO}/releases/tag/v1.{250 - index}.0",
                "body": "",
                "assets": [],
            }
            for index, published in enumerate(RELEASES)
        ][(page - 1) * per_page : page * per_page]
        last = -(-len(RELEASES) // per_page)
        url = f"https://api.github.com/repos/{REPO}/releases?per_page={per_page}"
        links = [f'<{url}&page={page + 1}>; rel="next"'] if page < last else []
        headers = {"Link": ", ".join([*links, f'<{url}&page={last}>; rel="last"']), "x-ratelimit-remaining": "50"}
        if page == 1:
            headers["ETag"] = ETAG
        return Response(json.dumps(items), content_type="application/json", headers=headers)


REPO_ETAG = 'W/"repo-stats-1"'


def repo(sent: Request) -> Response:
    """GET /repos/{repo}: the recorded answer with an ETag, 304 to a matching If-None-Match."""
    if sent.headers.get("If-None-Match") == REPO_ETAG:
        return Response(status=304, headers={"ETag": REPO_ETAG})
    body = (DATA / "github" / "repo.json").read_text()
    return Response(body, content_type="application/json", headers={"ETag": REPO_ETAG})


ITEMS = [NOW - timedelta(hours=1) - timedelta(hours=12 * i) for i in range(20)]  # ten days of a feed


def rss() -> str:
    items = "".join(
        f"<item><title>OpenAI ships model {i}</title><link>https://example.com/{i}</link>"
        f"<guid>https://example.com/{i}</guid><pubDate>{format_datetime(t)}</pubDate></item>"
        for i, t in enumerate(ITEMS)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>AI</title>{items}</channel></rss>'


def fred_release_dates(sent: Request) -> Response:
    # FRED's defaults: realtime_end 9999-12-31, every scheduled date to come.
    first = date.fromisoformat(sent.args["realtime_start"])
    last = date.fromisoformat(sent.args.get("realtime_end", "9999-12-31"))
    release = int(sent.args["release_id"])
    days = [date(year, month, 10) for year in range(2000, 2027) for month in range(1, 13)]
    rows = [{"release_id": release, "date": day.isoformat()} for day in days if first <= day <= last]
    return Response(json.dumps({"count": len(rows), "offset": 0, "limit": 10000, "release_dates": rows}))
