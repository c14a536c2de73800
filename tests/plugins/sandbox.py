"""The sandbox platform server as a fixture, and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bulletin.config.accounts import (
    BlueskyAccountSettings,
    FacebookAccountSettings,
    InstagramAccountSettings,
    MastodonAccountSettings,
    ThreadsAccountSettings,
    XAccountSettings,
)
from bulletin.config.settings import Settings
from bulletin.connectors.bluesky import BlueskyConnector
from bulletin.connectors.facebook import FacebookConnector
from bulletin.connectors.http import Timeout
from bulletin.connectors.instagram import InstagramConnector
from bulletin.connectors.mastodon import MastodonConnector
from bulletin.connectors.retry import RetryPolicy
from bulletin.connectors.sandbox import (
    DEFAULT_FB_PAGE,
    SANDBOX_ENV,
    SandboxServer,
)
from bulletin.connectors.sandbox.state import DEFAULT_IG_ACCOUNT, DEFAULT_THREADS_PROFILE
from bulletin.connectors.threads import ThreadsConnector
from bulletin.connectors.x import XConnector

# Waits short enough for tests: milliseconds, a two-second budget.
FAST_RETRY = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, jitter=0.01, budget=2.0)
FAST_TIMEOUT: Timeout = (2.0, 0.5)
MEDIA_BASE_URL = "https://media.example.org/bulletin"  # where a test agency serves images


# Seeding a thread of a thousand comments on a loaded machine can take seconds.
CONTROL_TIMEOUT = 60


class Control:
    """Drives a sandbox's control API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def get(self, path: str) -> Any:
        response = self.session.get(f"{self.url}/_sandbox/{path}", timeout=CONTROL_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.session.post(
            f"{self.url}/_sandbox/{path}", json=body or {}, timeout=CONTROL_TIMEOUT
        )
        response.raise_for_status()
        return response.json()

    def fault(self, kind: str, path: str, **options: Any) -> None:
        """Inject ``kind`` for the next requests whose path matches ``path``."""
        self.post("faults", {"kind": kind, "path": path, **options})

    def received(self, account: str) -> dict[str, int]:
        return dict(self.get("received")["accounts"].get(account, {}))

    def settings(self, **values: Any) -> None:
        self.post("settings", values)


def sandbox_settings(url: str, data_dir: Path | None = None) -> Settings:
    """Settings with the sandbox accounts the defaults have (``data_dir``: where connectors
    keep their files, such as the Meta container journals)."""
    paths = {"paths": {"data_dir": data_dir}} if data_dir is not None else {}
    return Settings.model_validate(
        {
            **paths,
            "accounts": _sandbox_accounts(url),
        }
    )


def _sandbox_accounts(url: str) -> dict[str, Any]:
    return {
        "sandbox-x": XAccountSettings(
            platform="x",
            base_url=url,
            consumer_key_env="SANDBOX_X_CONSUMER_KEY",
            consumer_secret_env="SANDBOX_X_CONSUMER_SECRET",
            access_token_env="SANDBOX_X_ACCESS_TOKEN",
            access_token_secret_env="SANDBOX_X_ACCESS_TOKEN_SECRET",
        ),
        "sandbox-facebook": FacebookAccountSettings(
            platform="facebook",
            base_url=url,
            page_id=DEFAULT_FB_PAGE["id"],
            token_env="SANDBOX_FACEBOOK_PAGE_TOKEN",
        ),
        "sandbox-mastodon": MastodonAccountSettings(
            platform="mastodon",
            base_url=url,
            instance="https://sandbox.social",
            token_env="SANDBOX_MASTODON_TOKEN",
        ),
        "sandbox-bluesky": BlueskyAccountSettings(
            platform="bluesky",
            base_url=url,
            handle="bulletin.sandbox.test",
            app_password_env="SANDBOX_BLUESKY_APP_PASSWORD",
        ),
        "sandbox-threads": ThreadsAccountSettings(
            platform="threads",
            base_url=url,
            user_id=DEFAULT_THREADS_PROFILE["id"],
            token_env="SANDBOX_THREADS_TOKEN",
            media_base_url=MEDIA_BASE_URL,
        ),
        "sandbox-instagram": InstagramAccountSettings(
            platform="instagram",
            base_url=url,
            ig_user_id=DEFAULT_IG_ACCOUNT["id"],
            token_env="SANDBOX_INSTAGRAM_TOKEN",
            media_base_url=MEDIA_BASE_URL,
        ),
    }


def x_connector(
    url: str, retry: RetryPolicy = FAST_RETRY, timeout: Timeout = FAST_TIMEOUT
) -> XConnector:
    return XConnector.from_settings(
        "sandbox-x", sandbox_settings(url), SANDBOX_ENV, retry=retry, timeout=timeout
    )


def fb_connector(
    url: str, retry: RetryPolicy = FAST_RETRY, timeout: Timeout = FAST_TIMEOUT
) -> FacebookConnector:
    return FacebookConnector.from_settings(
        "sandbox-facebook", sandbox_settings(url), SANDBOX_ENV, retry=retry, timeout=timeout
    )


def mastodon_connector(
    url: str, retry: RetryPolicy = FAST_RETRY, timeout: Timeout = FAST_TIMEOUT
) -> MastodonConnector:
    return MastodonConnector.from_settings(
        "sandbox-mastodon", sandbox_settings(url), SANDBOX_ENV, retry=retry, timeout=timeout
    )


def bluesky_connector(
    url: str, retry: RetryPolicy = FAST_RETRY, timeout: Timeout = FAST_TIMEOUT
) -> BlueskyConnector:
    return BlueskyConnector.from_settings(
        "sandbox-bluesky", sandbox_settings(url), SANDBOX_ENV, retry=retry, timeout=timeout
    )


def threads_connector(
    url: str,
    data_dir: Path,
    retry: RetryPolicy = FAST_RETRY,
    timeout: Timeout = FAST_TIMEOUT,
) -> ThreadsConnector:
    """The sandbox Threads profile; its container journal under ``data_dir``."""
    return ThreadsConnector.from_settings(
        "sandbox-threads",
        sandbox_settings(url, data_dir),
        SANDBOX_ENV,
        retry=retry,
        timeout=timeout,
    )


def instagram_connector(
    url: str,
    data_dir: Path,
    retry: RetryPolicy = FAST_RETRY,
    timeout: Timeout = FAST_TIMEOUT,
) -> InstagramConnector:
    """The sandbox Instagram account; its container journal under ``data_dir``."""
    return InstagramConnector.from_settings(
        "sandbox-instagram",
        sandbox_settings(url, data_dir),
        SANDBOX_ENV,
        retry=retry,
        timeout=timeout,
    )


class InstagramVisitor:
    """A member of the public commenting on the sandbox's Instagram, through its API."""

    def __init__(self, url: str, name: str = "visitor") -> None:
        self.url = f"{url}/v26.0"
        self.session = requests.Session()
        self.session.params = {"access_token": f"sandbox-instagram-visitor-{name}"}

    def comment(self, media_id: str, text: str = "comment", parent_id: str | None = None) -> str:
        edge = f"{parent_id}/replies" if parent_id else f"{media_id}/comments"
        response = self.session.post(f"{self.url}/{edge}", data={"message": text}, timeout=5)
        response.raise_for_status()
        return str(response.json()["id"])

    def delete(self, comment_id: str) -> None:
        self.session.delete(f"{self.url}/{comment_id}", timeout=5).raise_for_status()


class ThreadsVisitor:
    """A member of the public on the sandbox's Threads, through the Threads API itself."""

    def __init__(self, url: str, name: str = "visitor") -> None:
        self.url = f"{url}/v1.0"
        self.session = requests.Session()
        self.session.params = {"access_token": f"sandbox-threads-visitor-{name}"}
        response = self.session.get(f"{self.url}/me", timeout=5)
        response.raise_for_status()
        self.id = str(response.json()["id"])

    def reply(self, media_id: str, text: str = "reply") -> str:
        made = self.session.post(
            f"{self.url}/{self.id}/threads",
            data={"media_type": "TEXT", "text": text, "reply_to_id": media_id},
            timeout=5,
        )
        made.raise_for_status()
        published = self.session.post(
            f"{self.url}/{self.id}/threads_publish",
            data={"creation_id": made.json()["id"]},
            timeout=5,
        )
        published.raise_for_status()
        return str(published.json()["id"])

    def delete(self, media_id: str) -> None:
        self.session.delete(f"{self.url}/{media_id}", timeout=5).raise_for_status()


class SkyVisitor:
    """A member of the public on the sandbox's Bluesky, through its XRPC API."""

    def __init__(self, url: str, name: str = "visitor") -> None:
        self.url = f"{url}/xrpc"
        self.session = requests.Session()
        login = {"identifier": f"{name}.visitor.test", "password": "visitor"}
        response = self.session.post(
            f"{self.url}/com.atproto.server.createSession", json=login, timeout=5
        )
        response.raise_for_status()
        self.did = str(response.json()["did"])
        self.session.headers["authorization"] = f"Bearer {response.json()['accessJwt']}"

    def _record(self, uri: str) -> dict[str, Any]:
        repo, collection, rkey = uri.removeprefix("at://").split("/")
        response = self.session.get(
            f"{self.url}/com.atproto.repo.getRecord",
            params={"repo": repo, "collection": collection, "rkey": rkey},
            timeout=5,
        )
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def reply(self, parent_uri: str, text: str = "reply") -> str:
        parent = self._record(parent_uri)
        ref = {"uri": parent["uri"], "cid": parent["cid"]}
        root = (parent["value"].get("reply") or {}).get("root") or ref
        record = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "reply": {"root": root, "parent": ref},
        }
        body = {"repo": self.did, "collection": "app.bsky.feed.post", "record": record}
        response = self.session.post(
            f"{self.url}/com.atproto.repo.createRecord", json=body, timeout=5
        )
        response.raise_for_status()
        return str(response.json()["uri"])

    def rewrite(self, uri: str, text: str) -> None:
        record = self._record(uri)["value"]
        record["text"] = text
        rkey = uri.rsplit("/", 1)[-1]
        body = {
            "repo": self.did,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": record,
        }
        response = self.session.post(f"{self.url}/com.atproto.repo.putRecord", json=body, timeout=5)
        response.raise_for_status()

    def delete(self, uri: str) -> None:
        rkey = uri.rsplit("/", 1)[-1]
        body = {"repo": self.did, "collection": "app.bsky.feed.post", "rkey": rkey}
        response = self.session.post(
            f"{self.url}/com.atproto.repo.deleteRecord", json=body, timeout=5
        )
        response.raise_for_status()


class Visitor:
    """A member of the public on the sandbox's Mastodon, through its REST API."""

    def __init__(self, url: str, name: str = "visitor") -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["authorization"] = f"Bearer sandbox-visitor-{name}"

    def reply(self, status_id: str, text: str = "reply") -> str:
        body = {"status": text, "in_reply_to_id": status_id}
        response = self.session.post(f"{self.url}/api/v1/statuses", json=body, timeout=5)
        response.raise_for_status()
        return str(response.json()["id"])

    def edit(self, status_id: str, text: str) -> None:
        response = self.session.put(
            f"{self.url}/api/v1/statuses/{status_id}", json={"status": text}, timeout=5
        )
        response.raise_for_status()

    def delete(self, status_id: str) -> None:
        response = self.session.delete(f"{self.url}/api/v1/statuses/{status_id}", timeout=5)
        response.raise_for_status()


@pytest.fixture
def sandbox_state_file(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.json"


@pytest.fixture
def sandbox(sandbox_state_file: Path) -> Iterator[SandboxServer]:
    """A sandbox on a free loopback port with its state in a temporary file."""
    server = SandboxServer("127.0.0.1", 0, sandbox_state_file).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def control(sandbox: SandboxServer) -> Control:
    return Control(sandbox.url)


def sandbox_accounts(url: str, *, x_extra: str = "", facebook_extra: str = "") -> str:
    """TOML for an X account (``[accounts.x]``) and a Page (``[accounts.facebook]``) on the
    sandbox at ``url``; ``*_extra`` adds lines to either table."""
    return f"""
[accounts.x]
platform = "x"
base_url = "{url}"
consumer_key_env = "SANDBOX_X_CONSUMER_KEY"
consumer_secret_env = "SANDBOX_X_CONSUMER_SECRET"
access_token_env = "SANDBOX_X_ACCESS_TOKEN"
access_token_secret_env = "SANDBOX_X_ACCESS_TOKEN_SECRET"
{x_extra}

[accounts.facebook]
platform = "facebook"
base_url = "{url}"
page_id = "{DEFAULT_FB_PAGE["id"]}"
token_env = "SANDBOX_FACEBOOK_PAGE_TOKEN"
{facebook_extra}
"""
