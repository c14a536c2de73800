"""``[accounts.NAME]``: one account on one platform, a model per platform.

:data:`AnyAccountSettings` is the union of the platforms' models, told apart by ``platform``;
each platform's connector (see :mod:`bulletin.connectors.platforms`) reads its own model.
Credentials are named here (``*_env`` keys), never stored here.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, field_validator, model_validator

from bulletin.config.secrets import is_variable_name
from bulletin.config.values import Section, language_tags

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class AccountSettings(Section):
    """What every account has. A platform's model adds its own keys, names the ones that must
    be set (:attr:`required`) and the credentials (every key ending in ``_env``)."""

    platform: str
    base_url: str = ""
    enabled: bool = True
    capture_interval: int = Field(
        default=300, ge=1, description="seconds between listings of the account's posts"
    )
    monthly_budget: float = Field(
        default=0.0, ge=0, description="estimated platform spend per month, USD; 0 = none"
    )
    # the languages this account posts: ["*"] every language of a notice (a post each), or the
    # tags it posts (one account per language); see bulletin.publisher.languages
    languages: list[str] = Field(default_factory=lambda: ["*"])
    # how an account posting several languages posts the others: as replies to the primary
    # language's post ("reply"), or as posts of their own ("separate")
    language_posts: Literal["reply", "separate"] = "reply"

    # the day the account's access token expires (Meta's Page and user tokens last about 60
    # days); the administrators are told 14 and 3 days before. Unset: no warning
    token_expires: date | None = None

    required: ClassVar[tuple[str, ...]] = ()

    @field_validator("languages")
    @classmethod
    def _language_tags(cls, value: list[str]) -> list[str]:
        return language_tags(value, wildcard=True)

    @model_validator(mode="after")
    def _platform_fields(self) -> AccountSettings:
        missing = [key for key in self.required if not getattr(self, key)]
        if missing:
            raise ValueError(f"a {self.platform} account needs {', '.join(missing)}")
        for key in type(self).model_fields:
            value = getattr(self, key)
            if key.endswith("_env") and value and not is_variable_name(value):
                # the value is never repeated: it may be the credential itself
                raise ValueError(
                    f"{key} must name an environment variable or systemd credential (such as "
                    "PD_X_ACCESS_TOKEN), not hold the credential; its value is not shown"
                )
        return self


class FeedAccountSettings(AccountSettings):
    """The agency's own Atom feed, a file its website serves."""

    platform: Literal["feed"]
    path: Path | None = None  # None: <data_dir>/<account>.xml
    title: str = ""
    link: str = ""  # the page an entry opens; empty: [agency] website
    feed_url: str = ""  # where the feed itself is served (rel="self"); empty: <link>/<file>
    max_entries: int = Field(default=500, ge=1)


class XAccountSettings(AccountSettings):
    """An X account, OAuth 1.0a user context."""

    platform: Literal["x"]
    consumer_key_env: str = ""
    consumer_secret_env: str = ""
    access_token_env: str = ""
    access_token_secret_env: str = ""
    # replies in near real time through the filtered stream (docs/capture-x.md); the stream
    # authenticates with the app's OAuth 2.0 bearer token
    bearer_token_env: str = ""
    stream: bool = False
    stall_seconds: float = Field(
        default=60.0, gt=0, description="reconnect a stream silent this long (X: keep-alives)"
    )

    @model_validator(mode="after")
    def _stream_needs_token(self) -> XAccountSettings:
        if self.stream and not self.bearer_token_env:
            raise ValueError("an X account with stream = true needs bearer_token_env")
        return self

    required = (
        "consumer_key_env",
        "consumer_secret_env",
        "access_token_env",
        "access_token_secret_env",
    )


class FacebookAccountSettings(AccountSettings):
    """A Facebook Page, with a Page access token."""

    platform: Literal["facebook"]
    page_id: str = ""
    token_env: str = ""
    graph_version: str = "v26.0"
    # Page webhooks (see FacebookSettings); either overrides [facebook]'s for this Page's app
    app_secret_env: str = ""
    verify_token_env: str = ""

    required = ("page_id", "token_env")


class MastodonAccountSettings(AccountSettings):
    """A Mastodon account on ``instance`` (its server's URL), with an access token that has
    the ``read`` and ``write`` scopes. ``base_url``, when set, is used instead of
    ``instance`` (a sandbox)."""

    platform: Literal["mastodon"]
    instance: str = ""
    token_env: str = ""

    required = ("instance", "token_env")


class BlueskyAccountSettings(AccountSettings):
    """A Bluesky account: its ``handle`` and an app password, on ``pds`` (its server;
    ``https://bsky.social`` for accounts hosted by Bluesky). ``base_url``, when set, is used
    instead of ``pds`` (a sandbox)."""

    platform: Literal["bluesky"]
    handle: str = ""
    app_password_env: str = ""
    pds: str = "https://bsky.social"

    required = ("handle", "app_password_env")


class ThreadsAccountSettings(AccountSettings):
    """A Threads profile: its ``user_id`` (the Threads user id) and a Threads user access
    token (threads_basic, threads_content_publish, threads_read_replies,
    threads_manage_replies, threads_delete). Images are sent by URL, Threads fetching them:
    ``media_base_url`` is where the agency serves its approved images, named by their
    SHA-256 (``{media_base_url}/{sha256}.{ext}``; the web door serves them at
    ``{[web] base_url}/media``); empty = text-only posts."""

    platform: Literal["threads"]
    user_id: str = ""
    token_env: str = ""
    api_version: str = "v1.0"
    media_base_url: str = ""

    required = ("user_id", "token_env")


class InstagramAccountSettings(AccountSettings):
    """An Instagram professional account (Instagram API with Facebook Login): its
    ``ig_user_id`` and a token with instagram_basic, instagram_content_publish and
    instagram_manage_comments. Every post carries an image, which Instagram fetches from
    ``media_base_url`` (``{media_base_url}/{sha256}.{ext}``, where the agency serves its
    approved images: the web door does at ``{[web] base_url}/media``)."""

    platform: Literal["instagram"]
    ig_user_id: str = ""
    token_env: str = ""
    graph_version: str = "v26.0"
    media_base_url: str = ""

    required = ("ig_user_id", "token_env", "media_base_url")


class FacebookSettings(Section):
    """``[facebook]``: the Meta app that delivers Page webhooks to ``/webhooks/facebook``.

    ``app_secret_env`` names the app secret (each POST is signed with it, X-Hub-Signature-256);
    ``verify_token_env`` the token Meta's subscription handshake must echo. Both are names of
    environment variables or systemd credentials, never the values. Unset: webhooks are
    refused (403), and sweeps alone capture the Page.
    """

    app_secret_env: str = ""
    verify_token_env: str = ""

    @model_validator(mode="after")
    def _names(self) -> FacebookSettings:
        for key in ("app_secret_env", "verify_token_env"):
            value = getattr(self, key)
            if value and not is_variable_name(value):
                raise ValueError(
                    f"{key} must name an environment variable or systemd credential, not hold "
                    "the credential; its value is not shown"
                )
        return self


AnyAccountSettings = Annotated[
    FeedAccountSettings
    | XAccountSettings
    | FacebookAccountSettings
    | MastodonAccountSettings
    | BlueskyAccountSettings
    | ThreadsAccountSettings
    | InstagramAccountSettings,
    Field(discriminator="platform"),
]

# every platform an account may name, in the order of the union
PLATFORMS: tuple[str, ...] = tuple(
    get_args(model.model_fields["platform"].annotation)[0]
    for model in get_args(get_args(AnyAccountSettings)[0])
)
