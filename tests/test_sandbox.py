"""The sandbox server speaks the platforms' shapes, persists its state and injects faults."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from requests_oauthlib import OAuth1

from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, DEFAULT_X_ACCOUNT, SandboxServer
from tests.plugins.sandbox import Control

AUTH = OAuth1(
    DEFAULT_X_ACCOUNT["consumer_key"],
    DEFAULT_X_ACCOUNT["consumer_secret"],
    DEFAULT_X_ACCOUNT["access_token"],
    DEFAULT_X_ACCOUNT["access_token_secret"],
)
USER = DEFAULT_X_ACCOUNT["id"]
PAGE = DEFAULT_FB_PAGE["id"]
PAGE_TOKEN = DEFAULT_FB_PAGE["page_token"]


def tweet(url: str, text: str, **body: Any) -> requests.Response:
    return requests.post(f"{url}/2/tweets", json={"text": text, **body}, auth=AUTH, timeout=5)


def graph(
    url: str, method: str, path: str, token: str = PAGE_TOKEN, **params: Any
) -> requests.Response:
    params["access_token"] = token
    if method == "GET":
        return requests.get(f"{url}/v26.0/{path}", params=params, timeout=5)
    return requests.request(method, f"{url}/v26.0/{path}", data=params, timeout=5)


def test_x_create_post_shape_and_rate_limit_headers(sandbox: SandboxServer) -> None:
    """POST /2/tweets answers 201 with data.id and text, and X's rate-limit headers."""
    response = tweet(sandbox.url, "Road closed")
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["text"] == "Road closed"
    assert data["edit_history_tweet_ids"] == [data["id"]]
    assert response.headers["x-rate-limit-limit"] == "100"
    assert response.headers["x-rate-limit-remaining"] == "99"
    assert int(response.headers["x-rate-limit-reset"]) > time.time()


def test_x_duplicate_text_is_forbidden(sandbox: SandboxServer) -> None:
    """The same text twice from one account is refused with X's 403 duplicate body."""
    assert tweet(sandbox.url, "Same text").status_code == 201
    response = tweet(sandbox.url, "Same text")
    assert response.status_code == 403
    assert response.json() == {
        "title": "Forbidden",
        "type": "about:blank",
        "status": 403,
        "detail": "You are not allowed to create a Tweet with duplicate content.",
    }


def test_x_unknown_credentials_get_401(sandbox: SandboxServer) -> None:
    """A request signed with keys the sandbox does not know is 401 Unauthorized."""
    bad = OAuth1("nope", "nope", "nope", "nope")
    response = requests.get(f"{sandbox.url}/2/users/me", auth=bad, timeout=5)
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


def test_x_timeline_fields_and_pagination(sandbox: SandboxServer) -> None:
    """User timeline: created_at in milliseconds, meta tokens, since_id exclusive."""
    ids = [tweet(sandbox.url, f"Post {i}").json()["data"]["id"] for i in range(7)]
    url = f"{sandbox.url}/2/users/{USER}/tweets"
    fields: dict[str, str | int] = {
        "tweet.fields": "created_at,conversation_id,author_id",
        "max_results": 5,
    }
    first = requests.get(url, params=fields, auth=AUTH, timeout=5).json()
    assert [t["id"] for t in first["data"]] == ids[::-1][:5]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["data"][0]["created_at"])
    assert first["meta"]["result_count"] == 5
    assert first["meta"]["newest_id"] == ids[-1]
    second = requests.get(
        url,
        params={**fields, "pagination_token": first["meta"]["next_token"]},
        auth=AUTH,
        timeout=5,
    ).json()
    assert [t["id"] for t in second["data"]] == ids[1::-1]
    assert "next_token" not in second["meta"]
    newer = requests.get(url, params={"since_id": ids[4]}, auth=AUTH, timeout=5).json()
    assert [t["id"] for t in newer["data"]] == [ids[6], ids[5]]
    bad = requests.get(url, params={"max_results": 1}, auth=AUTH, timeout=5)
    assert bad.status_code == 400
    assert bad.json()["title"] == "Invalid Request"


def test_x_recent_search_covers_seven_days(sandbox: SandboxServer, control: Control) -> None:
    """conversation_id: search finds recent replies, not ones older than seven days."""
    root = tweet(sandbox.url, "Root").json()["data"]["id"]
    control.post("x/replies", {"tweet_id": root, "text": "new"})
    old = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    control.post("x/replies", {"tweet_id": root, "text": "old", "created_at": old})
    url = f"{sandbox.url}/2/tweets/search/recent"
    found = requests.get(
        url,
        params={"query": f"conversation_id:{root}", "tweet.fields": "in_reply_to_user_id"},
        auth=AUTH,
        timeout=5,
    ).json()
    texts = sorted(t["text"] for t in found["data"])
    assert texts == ["Root", "new"]
    assert all(t.get("in_reply_to_user_id") == USER for t in found["data"] if t["text"] == "new")
    too_old = requests.get(url, params={"query": "x", "start_time": old}, auth=AUTH, timeout=5)
    assert too_old.status_code == 400


def test_x_hide_reply_and_media_upload(sandbox: SandboxServer, control: Control) -> None:
    """PUT hidden on a reply answers data.hidden; media upload answers an id and media_key."""
    root = tweet(sandbox.url, "Root").json()["data"]["id"]
    reply = control.post("x/replies", {"tweet_id": root})["ids"][0]
    hidden = requests.put(
        f"{sandbox.url}/2/tweets/{reply}/hidden", json={"hidden": True}, auth=AUTH, timeout=5
    )
    assert hidden.json() == {"data": {"hidden": True}}
    upload = requests.post(
        f"{sandbox.url}/2/media/upload",
        files={"media": b"PNG"},
        data={"media_category": "tweet_image"},
        auth=AUTH,
        timeout=5,
    )
    media = upload.json()["data"]
    assert media["media_key"] == f"3_{media['id']}"
    assert tweet(sandbox.url, "With image", media={"media_ids": [media["id"]]}).ok


def test_x_rate_limit_enforced_at_the_window_limit(sandbox: SandboxServer) -> None:
    """After the window's quota (hide: 50), X's 429 comes with remaining 0."""
    root = tweet(sandbox.url, "Root").json()["data"]["id"]
    url = f"{sandbox.url}/2/tweets/{root}/hidden"
    session = requests.Session()
    statuses = [session.put(url, json={"hidden": True}, auth=AUTH, timeout=5) for _ in range(51)]
    assert statuses[-1].status_code == 429
    assert statuses[-1].headers["x-rate-limit-remaining"] == "0"


def test_graph_any_version_and_token_types(sandbox: SandboxServer) -> None:
    """Any vNN.N prefix works; /me names the Page for a Page token; a bad token is 190."""
    me = requests.get(f"{sandbox.url}/v19.0/me", params={"access_token": PAGE_TOKEN}, timeout=5)
    assert me.json() == {"id": PAGE, "name": DEFAULT_FB_PAGE["name"]}
    bad = graph(sandbox.url, "GET", "me", token="nope")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == 190
    assert bad.json()["error"]["type"] == "OAuthException"


def test_graph_user_token_refused_for_page_actions(sandbox: SandboxServer) -> None:
    """Publishing with a User token is refused with Graph's (#210) error."""
    response = graph(
        sandbox.url, "POST", f"{PAGE}/feed", token=DEFAULT_FB_PAGE["user_token"], message="Hello"
    )
    assert response.json()["error"]["code"] == 210


def test_graph_duplicate_consecutive_post_is_506(sandbox: SandboxServer) -> None:
    """The same message twice in a row is refused with code 506."""
    assert graph(sandbox.url, "POST", f"{PAGE}/feed", message="Same").ok
    again = graph(sandbox.url, "POST", f"{PAGE}/feed", message="Same")
    assert again.json()["error"]["code"] == 506


def test_graph_comments_toplevel_and_stream(sandbox: SandboxServer, control: Control) -> None:
    """Default toplevel leaves replies out; filter=stream includes them with parent."""
    post_id = graph(sandbox.url, "POST", f"{PAGE}/feed", message="Post").json()["id"]
    top = control.post("fb/comments", {"post_id": post_id, "count": 3})["ids"]
    control.post("fb/comments", {"post_id": post_id, "parent_id": top[0], "message": "re"})
    toplevel = graph(sandbox.url, "GET", f"{post_id}/comments").json()["data"]
    assert [c["id"] for c in toplevel] == top
    stream = graph(
        sandbox.url,
        "GET",
        f"{post_id}/comments",
        filter="stream",
        fields="id,message,parent,is_hidden",
    ).json()["data"]
    assert len(stream) == 4
    assert stream[-1]["parent"]["id"] == top[0]
    assert graph(sandbox.url, "POST", top[1], is_hidden="true").json() == {"success": True}


def test_graph_paging_cursors_and_next(sandbox: SandboxServer, control: Control) -> None:
    """Comment pages carry cursors.after and paging.next until the last page."""
    post_id = graph(sandbox.url, "POST", f"{PAGE}/feed", message="Post").json()["id"]
    control.post("fb/comments", {"post_id": post_id, "count": 30})
    first = graph(sandbox.url, "GET", f"{post_id}/comments", limit=25).json()
    assert len(first["data"]) == 25
    assert "next" in first["paging"]
    rest = requests.get(first["paging"]["next"], timeout=5).json()
    assert len(rest["data"]) == 5
    assert "next" not in rest["paging"]


def test_graph_comment_ids_need_moderate(sandbox: SandboxServer, control: Control) -> None:
    """Without the MODERATE task, comments come without their id field."""
    control.post(
        "fb/pages",
        {"id": "200", "page_token": "limited", "user_token": "lu", "tasks": ["CREATE_CONTENT"]},
    )
    post_id = graph(sandbox.url, "POST", "200/feed", token="limited", message="x").json()["id"]
    control.post("fb/comments", {"post_id": post_id})
    data = graph(sandbox.url, "GET", f"{post_id}/comments", token="limited").json()["data"]
    assert data
    assert "id" not in data[0]


def test_state_survives_a_restart(sandbox_state_file: Path) -> None:
    """Posts, comments and counts are still there after the sandbox restarts."""
    with SandboxServer(state_file=sandbox_state_file) as first:
        post_id = tweet(first.url, "Kept").json()["data"]["id"]
    with SandboxServer(state_file=sandbox_state_file) as second:
        data = requests.get(f"{second.url}/2/users/{USER}/tweets", auth=AUTH, timeout=5).json()
        assert [t["id"] for t in data["data"]] == [post_id]
        assert Control(second.url).received(f"x:{USER}")["created"] == 1


@pytest.mark.parametrize(
    ("kind", "status"),
    [("rate_limit", 429), ("error", 503), ("duplicate", 403), ("expired_token", 401)],
)
def test_x_faults_answer_like_x(
    sandbox: SandboxServer, control: Control, kind: str, status: int
) -> None:
    """Each short-circuit fault answers X's status once, then the endpoint works again."""
    control.fault(kind, r"^/2/tweets$", method="POST", seconds=30)
    response = tweet(sandbox.url, "Faulted")
    assert response.status_code == status
    if kind == "rate_limit":
        assert 25 <= int(response.headers["x-rate-limit-reset"]) - time.time() <= 31
    assert tweet(sandbox.url, "Faulted").status_code == 201


def test_graph_rate_limit_fault_has_usage_header(sandbox: SandboxServer, control: Control) -> None:
    """A Graph rate-limit fault uses the asked code and says when access returns."""
    control.fault("rate_limit", "/feed$", code=4, seconds=120)
    response = graph(sandbox.url, "POST", f"{PAGE}/feed", message="x")
    assert response.json()["error"]["code"] == 4
    assert '"estimated_time_to_regain_access": 2' in response.headers["x-business-use-case-usage"]


def test_delay_timeout_and_malformed_faults(sandbox: SandboxServer, control: Control) -> None:
    """delay answers late; timeout commits then stalls; malformed answers 200 non-JSON."""
    control.fault("delay", "/me$", seconds=0.3)
    started = time.monotonic()
    assert graph(sandbox.url, "GET", "me").ok
    assert time.monotonic() - started >= 0.3
    control.fault("timeout", r"^/2/tweets$", seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            f"{sandbox.url}/2/tweets", json={"text": "Stalled"}, auth=AUTH, timeout=(2, 0.2)
        )
    assert control.received(f"x:{USER}")["created"] == 1
    control.fault("malformed", "/me$")
    response = graph(sandbox.url, "GET", "me")
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_reset_clears_posts_and_faults(sandbox: SandboxServer, control: Control) -> None:
    """reset brings back a fresh sandbox with no pending faults."""
    tweet(sandbox.url, "Gone after reset")
    control.fault("error", "", count=5)
    control.post("reset")
    assert control.get("faults") == {"faults": []}
    assert control.get("received") == {"accounts": {}}
