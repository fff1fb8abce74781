"""GitHub releases client against a local server serving recorded GitHub API answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from adapters.feed import FeedError, FeedUnavailable, MalformedResponse, RateLimited
from adapters.github import GitHubClient, etag_key, next_page_number, parse_releases
from adapters.http import HttpClient
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate

DATA = Path(__file__).resolve().parent.parent / "data" / "github"
REPO = "openai/openai-python"
RELEASES_PATH = f"/repos/{REPO}/releases"
NOW = datetime(2025, 8, 5, 18, 0, tzinfo=UTC)
TOKEN = "ghp_Zx9TestTokenNeverToBeSeen0123456789"
# Real GitHub next links point at /repositories/{id}/... on api.github.com, another host
# than the test server: the client must take the page number, never the URL.
LINK_TO_PAGE_2 = (
    '<https://api.github.com/repositories/338408924/releases?per_page=100&page=2>; rel="next", '
    '<https://api.github.com/repositories/338408924/releases?per_page=100&page=3>; rel="last"'
)
LINK_TO_PAGE_3 = (
    '<https://api.github.com/repositories/338408924/releases?per_page=100&page=1>; rel="prev", '
    '<https://api.github.com/repositories/338408924/releases?per_page=100&page=3>; rel="next", '
    '<https://api.github.com/repositories/338408924/releases?per_page=100&page=3>; rel="last"'
)


def recorded(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
def http(httpserver: HTTPServer) -> HttpClient:
    return HttpClient(
        feed="github",
        base_url=httpserver.url_for("").rstrip("/"),
        user_agent="HYDRA-test/1.0",
        backoff_s=0.01,
        max_wait_s=2,
    )


def page_query(page: int) -> dict[str, str]:
    return {"per_page": "100", "page": str(page)}


def serve_three_pages(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(RELEASES_PATH, query_string=page_query(1)).respond_with_json(
        recorded("releases_page1.json"),
        headers={"ETag": 'W/"5f1c0f3e9a"', "Link": LINK_TO_PAGE_2, "x-ratelimit-remaining": "57"},
    )
    httpserver.expect_ordered_request(RELEASES_PATH, query_string=page_query(2)).respond_with_json(
        recorded("releases_page2.json"), headers={"Link": LINK_TO_PAGE_3, "ETag": 'W/"page-2-etag"'}
    )
    httpserver.expect_ordered_request(RELEASES_PATH, query_string=page_query(3)).respond_with_json([])


def test_releases_follow_link_pages_until_an_empty_page(httpserver: HTTPServer, http: HttpClient) -> None:
    serve_three_pages(httpserver)

    batch = GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)

    httpserver.check_assertions()
    requests = [request for request, _ in httpserver.log]
    assert [request.args["page"] for request in requests] == ["1", "2", "3"]
    assert all(request.args["per_page"] == "100" for request in requests)
    assert all(request.headers["Accept"] == "application/vnd.github+json" for request in requests)
    assert all(request.headers["X-GitHub-Api-Version"] == "2022-11-28" for request in requests)
    assert all("Authorization" not in request.headers for request in requests)
    assert "If-None-Match" not in requests[0].headers

    releases = batch.tables["github_releases"]
    # The draft on page 1 (no published_at) is skipped, not rejected.
    assert batch.rejected == []
    assert releases.select("release_id", "tag_name", "prerelease", "ts_event").rows() == [
        (236478913, "v1.98.0", False, datetime(2025, 7, 30, 12, 49, 5, tzinfo=UTC)),
        (235210334, "v1.97.2", False, datetime(2025, 7, 30, 0, 12, 40, tzinfo=UTC)),
        (234017544, "v1.97.1", False, datetime(2025, 7, 22, 14, 4, 2, tzinfo=UTC)),
        (232988301, "v1.97.0b1", True, datetime(2025, 7, 16, 20, 38, 21, tzinfo=UTC)),
    ]
    first = releases.row(0, named=True)
    assert first == {
        "repo": REPO,
        "release_id": 236478913,
        "tag_name": "v1.98.0",
        "name": "v1.98.0",
        "draft": False,
        "prerelease": False,
        "created_at": datetime(2025, 7, 30, 12, 48, 31, tzinfo=UTC),
        "ts_event": datetime(2025, 7, 30, 12, 49, 5, tzinfo=UTC),
        "html_url": "https://github.com/openai/openai-python/releases/tag/v1.98.0",
        "ts_ingested": NOW,
    }
    # Only page 1's ETag says whether the list changed.
    assert batch.tables["feed_state"].rows() == [("github", f"etag:{REPO}", 'W/"5f1c0f3e9a"', NOW)]


def test_the_previous_etag_is_sent_and_304_yields_no_rows(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(RELEASES_PATH, query_string=page_query(1)).respond_with_data(
        "", status=304, headers={"ETag": 'W/"5f1c0f3e9a"', "x-ratelimit-remaining": "57"}
    )

    batch = GitHubClient(http).fetch_releases(REPO, etag='W/"5f1c0f3e9a"', now=NOW)

    assert [request.headers.get("If-None-Match") for request, _ in httpserver.log] == ['W/"5f1c0f3e9a"']
    assert batch.row_count == 0
    assert batch.tables == {}
    assert batch.rejected == []


def test_a_token_is_sent_as_bearer_and_kept_out_of_repr(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(RELEASES_PATH).respond_with_json([])
    client = GitHubClient(http, token=TOKEN)

    client.fetch_releases(REPO, etag=None, now=NOW)

    (request, _), *_ = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(client)


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (403, {"message": "Resource not accessible by integration"}, {}, FeedUnavailable),
        (401, {"message": "Bad credentials"}, {}, FeedUnavailable),
        (403, {"message": "API rate limit exceeded"}, {"x-ratelimit-remaining": "0"}, RateLimited),
        (200, "<html><body>Unicorn!</body></html>", {}, MalformedResponse),
    ],
)
def test_the_token_never_appears_in_errors(
    httpserver: HTTPServer, http: HttpClient, status: int, body: Any, headers: dict[str, str], expected: type
) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    httpserver.expect_request(RELEASES_PATH).respond_with_data(text, status=status, headers=headers)

    with pytest.raises(expected) as caught:
        GitHubClient(http, token=TOKEN).fetch_releases(REPO, etag=None, now=NOW)

    error = caught.value
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert TOKEN not in getattr(error, "payload", "")
    assert TOKEN not in repr(error.__cause__) and TOKEN not in repr(error.__context__)


def test_spent_rate_limit_stops_paging_and_later_calls(httpserver: HTTPServer, http: HttpClient) -> None:
    reset = int(NOW.timestamp()) + 1234
    httpserver.expect_request(RELEASES_PATH, query_string=page_query(1)).respond_with_json(
        recorded("releases_page1.json"),
        headers={"Link": LINK_TO_PAGE_2, "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    client = GitHubClient(http)

    with pytest.raises(RateLimited) as caught:
        client.fetch_releases(REPO, etag=None, now=NOW)
    assert caught.value.retry_after_s == 1234.0

    # Nothing is asked until the reset: the budget is known to be spent.
    with pytest.raises(RateLimited) as again:
        client.fetch_repo_stats(REPO, now=NOW.replace(minute=10))
    assert again.value.retry_after_s == 634.0
    assert len(httpserver.log) == 1


def test_403_with_spent_rate_limit_is_rate_limited(httpserver: HTTPServer, http: HttpClient) -> None:
    reset = int(NOW.timestamp()) + 600
    httpserver.expect_request(RELEASES_PATH).respond_with_json(
        {
            "message": "API rate limit exceeded for 203.0.113.9.",
            "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
        },
        status=403,
        headers={"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )

    with pytest.raises(RateLimited) as caught:
        GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)

    assert caught.value.retry_after_s == 600.0


def test_403_forbidden_is_unavailable_not_rate_limited(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(RELEASES_PATH).respond_with_json(
        {"message": "Repository access blocked", "block": {"reason": "tos"}},
        status=403,
        headers={"x-ratelimit-remaining": "4999", "x-ratelimit-reset": str(int(NOW.timestamp()) + 600)},
    )

    with pytest.raises(FeedUnavailable) as caught:
        GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)

    assert not isinstance(caught.value, RateLimited)
    assert "HTTP 403 Repository access blocked" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (429, {"Retry-After": "30"}, 30.0),
        (403, {"Retry-After": "45", "x-ratelimit-remaining": "12"}, 45.0),  # secondary limit
        (429, {}, 60.0),
    ],
)
def test_secondary_rate_limits(
    httpserver: HTTPServer, http: HttpClient, status: int, headers: dict[str, str], wait: float
) -> None:
    httpserver.expect_request(RELEASES_PATH).respond_with_json(
        {"message": "You have exceeded a secondary rate limit."}, status=status, headers=headers
    )

    with pytest.raises(RateLimited) as caught:
        GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)

    assert caught.value.retry_after_s == wait
    assert len(httpserver.log) == 1


def test_a_body_that_is_not_json_is_malformed(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(RELEASES_PATH).respond_with_data('[{"id": 1, "tag_name": "v1"', content_type="text/json")

    with pytest.raises(MalformedResponse) as caught:
        GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)

    assert caught.value.payload == '[{"id": 1, "tag_name": "v1"'


def test_json_of_the_wrong_shape_is_malformed(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(RELEASES_PATH).respond_with_json({"releases": []})

    with pytest.raises(MalformedResponse, match="expected a JSON array"):
        GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)


def test_a_release_with_a_bad_published_at_is_rejected_and_the_rest_load(
    httpserver: HTTPServer, http: HttpClient
) -> None:
    httpserver.expect_request(RELEASES_PATH).respond_with_json(recorded("releases_bad_published_at.json"))

    batch = GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)

    assert batch.tables["github_releases"].get_column("tag_name").to_list() == ["v1.98.0", "v1.97.1"]
    [rejected] = batch.rejected
    assert rejected.reason == f"{REPO}: published_at is not an ISO 8601 time: '30/07/2025 00:12'"
    assert json.loads(rejected.payload)["id"] == 235210334


def test_release_items_of_the_wrong_shape_are_rejected_one_by_one() -> None:
    good = recorded("releases_page2.json")[0]
    batch = parse_releases(
        REPO,
        [
            good,
            "not an object",
            {**good, "id": "234017544"},
            {**good, "tag_name": None},
            {**good, "prerelease": "yes"},
            {**good, "published_at": "2025-07-22T14:04:02"},
            {**good, "published_at": None},
        ],
        ingested_at=NOW,
    )

    assert batch.tables["github_releases"].height == 1
    assert [rejected.reason.removeprefix(f"{REPO}: ") for rejected in batch.rejected] == [
        "release is not a JSON object",
        "id is missing or not an integer",
        "tag_name is missing",
        "prerelease is not a boolean: 'yes'",
        "published_at has no time zone: '2025-07-22T14:04:02'",
        "published release has no published_at",
    ]


def test_a_naive_ingestion_time_is_a_caller_error_not_a_rejected_release() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_releases(REPO, recorded("releases_page2.json"), ingested_at=datetime(2025, 8, 5))  # noqa: DTZ001


def test_repo_stats(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(f"/repos/{REPO}").respond_with_json(recorded("repo.json"))

    batch = GitHubClient(http).fetch_repo_stats(REPO, now=NOW)

    assert batch.tables["repo_stats"].rows(named=True) == [
        {
            "repo": REPO,
            "ts_event": NOW,
            "stars": 28473,
            "forks": 4102,
            "open_issues": 187,
            "watchers": 301,
            "ts_ingested": NOW,
        }
    ]


def test_repo_stats_without_counts_are_malformed(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(f"/repos/{REPO}").respond_with_json({"message": "Moved Permanently", "url": "x"})

    with pytest.raises(MalformedResponse, match="stargazers_count is missing"):
        GitHubClient(http).fetch_repo_stats(REPO, now=NOW)


def test_a_repo_that_is_not_owner_slash_name_is_refused_before_any_request(http: HttpClient) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        GitHubClient(http).fetch_releases("openai/../../user", etag=None, now=NOW)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (None, None),
        ("", None),
        (LINK_TO_PAGE_2, 2),
        (LINK_TO_PAGE_3, 3),
        ('<https://api.github.com/repositories/1/releases?page=1>; rel="prev"', None),
        ('<https://api.github.com/repositories/1/releases?after=abc>; rel="next"', None),
    ],
)
def test_next_page_number(link: str | None, expected: int | None) -> None:
    assert next_page_number(link) == expected


def test_loading_twice_into_a_fresh_warehouse_keeps_the_same_rows(
    httpserver: HTTPServer, http: HttpClient, tmp_path: Path
) -> None:
    serve_three_pages(httpserver)
    httpserver.expect_ordered_request(f"/repos/{REPO}").respond_with_json(recorded("repo.json"))
    client = GitHubClient(http)
    batch = client.fetch_releases(REPO, etag=None, now=NOW)
    batch.extend(client.fetch_repo_stats(REPO, now=NOW))
    warehouse = Warehouse(tmp_path / "w.duckdb")
    migrate(warehouse)

    first = upsert(warehouse, batch.tables)
    second = upsert(warehouse, batch.tables)

    assert first == second == {"github_releases": 4, "feed_state": 1, "repo_stats": 1}
    with warehouse.connect() as con:
        counts = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()
            for table in ("github_releases", "repo_stats", "feed_state")
        }
        stored = con.execute("SELECT value FROM feed_state WHERE feed = 'github' AND key = ?", [etag_key(REPO)])
        etag = stored.fetchone()
        published = con.execute("SELECT max(ts_event) FROM github_releases").fetchone()
    assert counts == {"github_releases": (4,), "repo_stats": (1,), "feed_state": (1,)}
    assert etag == ('W/"5f1c0f3e9a"',)
    assert published == (datetime(2025, 7, 30, 12, 49, 5, tzinfo=UTC),)


def test_errors_are_feed_errors_of_the_github_feed(httpserver: HTTPServer, http: HttpClient) -> None:
    httpserver.expect_request(RELEASES_PATH).respond_with_json({"message": "Not Found"}, status=404)

    with pytest.raises(FeedError) as caught:
        GitHubClient(http).fetch_releases(REPO, etag=None, now=NOW)

    assert caught.value.feed == "github"
