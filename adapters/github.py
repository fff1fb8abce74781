"""GitHub releases and repository stats of the AI labs' public repositories.

A lab shipping a release is the earliest hard evidence of a new model or SDK; the release
list and star counts feed the narrative velocity that strategy 4 trades on.

Budget: 60 requests/hour without a token. Page 1 carries the last ETag as If-None-Match,
and an unchanged list answers 304, which GitHub does not count, so the usual run costs
nothing. Once GitHub reports the budget spent (`x-ratelimit-remaining: 0`) the client
makes no further request until the reset time and raises RateLimited instead, so a run
never burns requests on answers that can only be 403s.

Draft releases are skipped, not rejected: only users with push access see them, they have
no published_at, and until published they are no event the market can react to. Nothing is
wrong with them, so they do not belong in quarantine either.

The token is only ever placed in the Authorization header of requests to the configured
base URL; pages are requested by number rather than by following the Link URL, so a link
to another host can never receive it. It appears in no error, payload or repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import polars as pl
import requests

from adapters.feed import (
    FeedBatch,
    FeedError,
    FeedUnavailable,
    MalformedResponse,
    RateLimited,
    Rejected,
    aware_utc,
    payload_text,
)
from adapters.http import HttpClient, json_body, retry_after_seconds
from adapters.tables import FEED_STATE_SCHEMA, TABLE_SCHEMAS
from adapters.window import Window

FEED = "github"
PER_PAGE = 100
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
# GitHub's documented advice when a limit answer says neither Retry-After nor a reset.
DEFAULT_RATE_LIMIT_WAIT_S = 60.0

RELEASES_SCHEMA = TABLE_SCHEMAS["github_releases"]
REPO_STATS_SCHEMA = TABLE_SCHEMAS["repo_stats"]

# Ids and counts are stored as Int64: a larger one would fail the whole page's frame.
INT64_LIMIT = 2**63
_LINK_PART = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]*)"')
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubFeed(Protocol):
    def fetch_releases(
        self, repo: str, *, etag: str | None, now: datetime, window: Window | None = None
    ) -> FeedBatch: ...

    def fetch_repo_stats(self, repo: str, *, now: datetime, stored: StoredStats | None = None) -> FeedBatch: ...


def etag_key(repo: str) -> str:
    """The feed_state key under which the ETag of `repo`'s first release page is kept."""
    return f"etag:{repo}"


def stats_etag_key(repo: str) -> str:
    """The feed_state key under which the ETag of `repo`'s stats (GET /repos/{repo}) is kept."""
    return f"stats-etag:{repo}"


@dataclass(frozen=True)
class StoredStats:
    """A repo's last stored counts (stars, forks, open_issues, watchers) and the ETag of the
    answer they were read from: a 304 to that ETag means the counts still stand."""

    etag: str
    counts: Mapping[str, int | None]


@dataclass
class GitHubClient:
    """One client per run: it remembers an exhausted rate limit across its calls."""

    http: HttpClient
    token: str | None = field(default=None, repr=False)
    max_pages: int = 10
    _exhausted_until: datetime | None = field(default=None, init=False, repr=False)

    def fetch_releases(self, repo: str, *, etag: str | None, now: datetime, window: Window | None = None) -> FeedBatch:
        """All releases of `repo` (up to max_pages x 100), or nothing if page 1 is unchanged.

        The batch holds github_releases rows and, when GitHub sent one, the new ETag as a
        feed_state row; store it and pass it back as `etag` next time.

        A backfill (`window`) keeps the releases published in it. It sends no ETag and keeps
        none, since the ETag stands for the whole first page and the window's rows may not be
        all of it. GitHub lists releases newest first (by creation), so the pages are read
        until one reaches back past the window's start, however many that takes.
        """
        path = f"/repos/{_checked_repo(repo)}/releases"
        batch = FeedBatch(feed=FEED)
        page = 1
        new_etag: str | None = None
        while window is not None or page <= self.max_pages:
            extra = {"If-None-Match": etag} if page == 1 and etag and window is None else {}
            response = self._get(path, now, params={"per_page": PER_PAGE, "page": page}, headers=extra)
            if response.status_code == 304:
                return batch
            if page == 1:
                new_etag = response.headers.get("ETag")
            payload = json_body(FEED, response)
            if not isinstance(payload, list):
                raise MalformedResponse(FEED, f"{path} page {page}: expected a JSON array", response.text[:100_000])
            if not payload:
                break
            releases = parse_releases(repo, payload, ingested_at=now)
            batch.extend(releases)
            if window is not None and _reaches_before(releases.tables["github_releases"], window.start):
                break
            next_page = next_page_number(response.headers.get("Link"))
            if next_page is None or next_page <= page:
                break
            page = next_page
        if window is not None:
            batch.tables["github_releases"] = window.cut(batch.tables["github_releases"])
        elif new_etag:
            batch.extend(etag_state(etag_key(repo), new_etag, updated_at=now))
        return batch

    def fetch_repo_stats(self, repo: str, *, now: datetime, stored: StoredStats | None = None) -> FeedBatch:
        """Star, fork, issue and watcher counts of `repo` as observed at `now`, and the
        answer's ETag as a feed_state row. With `stored`, its ETag is sent as If-None-Match:
        a 304 (which GitHub does not count against the rate limit) observes the stored
        counts again at `now`, so the series stays as fresh as a full answer would keep it."""
        path = f"/repos/{_checked_repo(repo)}"
        response = self._get(path, now, headers={"If-None-Match": stored.etag} if stored else None)
        if response.status_code == 304 and stored is not None:
            return stats_batch(repo, stored.counts, observed_at=now, ingested_at=now)
        batch = parse_repo_stats(repo, json_body(FEED, response), observed_at=now, ingested_at=now)
        etag = response.headers.get("ETag")
        if etag:
            batch.extend(etag_state(stats_etag_key(repo), etag, updated_at=now))
        return batch

    def _get(
        self,
        path: str,
        now: datetime,
        *,
        params: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if self._exhausted_until is not None and now < self._exhausted_until:
            wait = (self._exhausted_until - now).total_seconds()
            raise RateLimited(FEED, f"GET {path}: rate limit spent, not asking before the reset", wait)
        sent = {**API_HEADERS, **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        # 403 and 429 are inspected here: HttpClient cannot tell GitHub's spent rate limit
        # (a 403 with x-ratelimit-remaining 0) from a real refusal.
        response = self.http.request("GET", path, params=params, headers=sent, accept_status=frozenset({304, 403, 429}))
        remaining = _int_header(response, "x-ratelimit-remaining")
        reset_at = _reset_time(response)
        if remaining == 0:
            self._exhausted_until = reset_at or now + timedelta(seconds=DEFAULT_RATE_LIMIT_WAIT_S)
        if response.status_code in (403, 429):
            raise _refusal(path, response, now, rate_limit_spent=remaining == 0, reset_at=reset_at)
        return response


def _reaches_before(releases: pl.DataFrame, start: datetime) -> bool:
    """Whether a page of releases holds one created (else published) before `start`."""
    created = releases.select(pl.coalesce("created_at", "ts_event").min()).item()
    return isinstance(created, datetime) and created < start


def parse_releases(repo: str, payload: list[Any], *, ingested_at: datetime) -> FeedBatch:
    """github_releases rows from one page of GET /repos/{repo}/releases; drafts are skipped."""
    ingested = aware_utc(ingested_at)
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for item in payload:
        try:
            row = _release_row(repo, item, ingested)
        except ValueError as problem:
            rejected.append(Rejected.of(item, f"{repo}: {problem}"))
            continue
        if row is not None:
            rows.append(row)
    return FeedBatch(
        feed=FEED, tables={"github_releases": pl.DataFrame(rows, schema=RELEASES_SCHEMA)}, rejected=rejected
    )


def parse_repo_stats(repo: str, payload: Any, *, observed_at: datetime, ingested_at: datetime) -> FeedBatch:
    """One repo_stats row from GET /repos/{repo}; an answer without star or fork counts is unusable."""
    if not isinstance(payload, dict):
        raise MalformedResponse(FEED, f"{repo}: repository answer is not a JSON object", payload_text(payload))
    try:
        stars = _count(payload, "stargazers_count", required=True)
        forks = _count(payload, "forks_count", required=True)
        open_issues = _count(payload, "open_issues_count", required=False)
        # `watchers_count` is the star count again (a legacy alias); subscribers are watchers.
        watchers = _count(payload, "subscribers_count", required=False)
    except ValueError as problem:
        raise MalformedResponse(FEED, f"{repo}: {problem}", payload_text(payload)) from None
    counts = {"stars": stars, "forks": forks, "open_issues": open_issues, "watchers": watchers}
    return stats_batch(repo, counts, observed_at=observed_at, ingested_at=ingested_at)


def stats_batch(
    repo: str, counts: Mapping[str, int | None], *, observed_at: datetime, ingested_at: datetime
) -> FeedBatch:
    """One repo_stats row: `counts` (stars, forks, open_issues, watchers) as observed at `observed_at`."""
    row = {"repo": repo, "ts_event": aware_utc(observed_at), **counts, "ts_ingested": aware_utc(ingested_at)}
    return FeedBatch(feed=FEED, tables={"repo_stats": pl.DataFrame([row], schema=REPO_STATS_SCHEMA)})


def etag_state(key: str, etag: str, *, updated_at: datetime) -> FeedBatch:
    """The feed_state row that keeps `etag` under `key` (etag_key, stats_etag_key)."""
    row = {"feed": FEED, "key": key, "value": etag, "ts_updated": aware_utc(updated_at)}
    return FeedBatch(feed=FEED, tables={"feed_state": pl.DataFrame([row], schema=FEED_STATE_SCHEMA)})


def next_page_number(link_header: str | None) -> int | None:
    """The page number of the rel="next" link, or None when there is no next page."""
    if not link_header:
        return None
    for url, rel in _LINK_PART.findall(link_header):
        if "next" not in rel.split():
            continue
        pages = parse_qs(urlsplit(url).query).get("page", [])
        return int(pages[0]) if pages and pages[0].isdigit() else None
    return None


def _release_row(repo: str, item: Any, ingested: datetime) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        raise ValueError("release is not a JSON object")
    draft = _flag(item, "draft")
    if draft:
        return None
    release_id = item.get("id")
    if not isinstance(release_id, int) or isinstance(release_id, bool):
        raise ValueError("id is missing or not an integer")
    if not 0 < release_id < INT64_LIMIT:
        raise ValueError(f"id {release_id} is not a positive 64-bit integer")
    tag_name = item.get("tag_name")
    if not isinstance(tag_name, str) or not tag_name:
        raise ValueError("tag_name is missing")
    published_at = _timestamp(item, "published_at")
    if published_at is None:
        raise ValueError("published release has no published_at")
    return {
        "repo": repo,
        "release_id": release_id,
        "tag_name": tag_name,
        "name": _optional_str(item, "name"),
        "draft": draft,
        "prerelease": _flag(item, "prerelease"),
        "created_at": _timestamp(item, "created_at"),
        "ts_event": published_at,
        "html_url": _optional_str(item, "html_url"),
        "ts_ingested": ingested,
    }


def _timestamp(item: dict[str, Any], key: str) -> datetime | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{key} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{key} has no time zone: {value!r}")
    return parsed.astimezone(UTC)


def _flag(item: dict[str, Any], key: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} is not a boolean: {value!r}")
    return value


def _optional_str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def _count(payload: dict[str, Any], key: str, *, required: bool) -> int | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < INT64_LIMIT:
        raise ValueError(f"{key} is missing or not a count: {value!r}")
    return value


def _refusal(
    path: str, response: requests.Response, now: datetime, *, rate_limit_spent: bool, reset_at: datetime | None
) -> FeedError:
    status = response.status_code
    retry_after = retry_after_seconds(response)
    # A secondary (abuse) limit answers 403 or 429 with Retry-After and remaining budget left.
    if status == 429 or rate_limit_spent or retry_after is not None:
        if retry_after is None:
            retry_after = max(0.0, (reset_at - now).total_seconds()) if reset_at else DEFAULT_RATE_LIMIT_WAIT_S
        return RateLimited(FEED, f"GET {path}: HTTP {status} rate limited, retry after {retry_after:.0f}s", retry_after)
    return FeedUnavailable(FEED, f"GET {path}: HTTP {status} {_message(response)}")


def _message(response: requests.Response) -> str:
    """GitHub's own `message` field: the body may be HTML from a proxy, so nothing else is echoed."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:200] if message else (response.reason or "")


def _int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None


def _reset_time(response: requests.Response) -> datetime | None:
    epoch = _int_header(response, "x-ratelimit-reset")
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _checked_repo(repo: str) -> str:
    if not _REPO_NAME.match(repo):
        raise ValueError(f"repository must be 'owner/name', got {repo!r}")
    return repo
