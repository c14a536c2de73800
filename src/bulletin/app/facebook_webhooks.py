"""Facebook Page webhooks as the application layer sees them.

The caller is Meta, not a person: it has no session and no role. It is authenticated here,
once, for every door: the subscription handshake by the verify token, each delivery by its
X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret). Both are compared in
constant time. Secrets come from ``[facebook]`` (or a Facebook account's own
``app_secret_env`` / ``verify_token_env``), read through the environment or systemd
credentials, and never appear in a log line, an answer or an exception.

Also here: subscribing a Page to the app (``feed`` field) and the capture job's entry point.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.archiver.capture.webhooks import WebhookCapture, WebhookResult, receive
from bulletin.config.accounts import FacebookAccountSettings
from bulletin.config.secrets import resolve_secret
from bulletin.connectors.base import CheckLine
from bulletin.errors import AuthError, Refused
from bulletin.identity import require_role

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from bulletin.connectors.facebook import FacebookConnector

log = structlog.get_logger("bulletin.webhooks.facebook")

SIGNATURE_PREFIX = "sha256="
MAX_BODY = 1024 * 1024  # Meta batches up to 1,000 changes; far below this

_checked: weakref.WeakSet[Engine] = weakref.WeakSet()  # checked by a delivery
_checked_lock = threading.Lock()
_rejected: Counter[str] = Counter()
_rejected_lock = threading.Lock()


def rejected_counts() -> dict[str, int]:
    """Webhook requests refused by this process since it started, by reason."""
    with _rejected_lock:
        return dict(_rejected)


def _reject(reason: str) -> Refused:
    with _rejected_lock:
        _rejected[reason] += 1
    log.warning("facebook webhook refused", reason=reason)
    return Refused(f"facebook webhook refused: {reason}")


def _secrets(app: App, key: str) -> list[bytes]:
    """The configured values of ``key`` (``app_secret_env`` or ``verify_token_env``): the
    ``[facebook]`` section's and every Facebook account's own; those unset are skipped."""
    names = [getattr(app.settings.facebook, key)]
    names += [
        getattr(a, key)
        for a in app.settings.accounts.values()
        if isinstance(a, FacebookAccountSettings)
    ]
    out = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            out.append(resolve_secret(name, app.environ, "facebook").reveal().encode())
        except AuthError:
            log.error("a facebook webhook credential is not set", variable=name)
    return out


def verify_subscription(
    app: App, mode: str | None, token: str | None, challenge: str | None
) -> str:
    """Meta's subscription handshake: the challenge to echo.

    :raises Refused: not a subscribe request, no challenge, or the token matches none configured.
    """
    if mode != "subscribe" or not challenge:
        raise _reject("bad handshake")
    given = (token or "").encode()
    # compare against every configured token, each in constant time
    matched = False
    for expected in _secrets(app, "verify_token_env"):
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise _reject("bad verify token")
    log.info("facebook webhook subscription verified")
    return challenge


def signature_of(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends for ``body``."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def accept_delivery(app: App, body: bytes, signature: str | None) -> int:
    """Store a signed delivery durably (see :func:`bulletin.archiver.capture.webhooks.receive`)
    and return its id; answer 200 only after this returns.

    :raises Refused: no signature, a malformed one, or one no configured app secret made.
    """
    if not signature:
        raise _reject("missing signature")
    if not signature.startswith(SIGNATURE_PREFIX) or len(body) > MAX_BODY:
        raise _reject("bad signature")
    given = signature.encode()
    matched = False
    for secret in _secrets(app, "app_secret_env"):
        matched |= hmac.compare_digest(signature_of(secret, body).encode(), given)
    if not matched:
        raise _reject("bad signature")
    # the schema is checked once per process here, not per delivery: a check per request
    # would serialise the receipts that share one commit (and an insert into a schema gone
    # wrong fails on its own)
    with _checked_lock:
        if app.engine not in _checked:
            _checked.add(app.checked_engine())
    return receive(app.engine, body, signature, app.clock.now())


def facebook_pages(app: App) -> dict[str, str]:
    """Page id -> account name, for every enabled Facebook account."""
    return {
        a.page_id: name
        for name, a in sorted(app.settings.accounts.items())
        if isinstance(a, FacebookAccountSettings) and a.enabled
    }


def capture_webhook_events(app: App) -> WebhookResult:
    """The capture job: archive pending deliveries and the changes they report."""
    pages = facebook_pages(app)
    return WebhookCapture(app.archiver, app.connector, pages, app.clock).run()


@dataclass(frozen=True)
class Subscription:
    """Whether a Page has the app installed with the ``feed`` field."""

    account: str
    subscribed: bool
    fields: list[str]


@acts
def subscribe_page(app: App, actor: Actor, account: str) -> Subscription:
    """Install the app on ``account``'s Page for the ``feed`` field
    (``POST /{page-id}/subscribed_apps``), then read it back.

    :raises Refused: ``actor`` is not an admin, or the account is not a Facebook Page.
    :raises ConnectorError: the platform refused or could not be reached.
    """
    require_role(app.settings, actor.name, "admin")
    connector = _facebook(app, account)
    connector.subscribe_app(["feed"])
    fields = connector.subscribed_fields()
    log.info("page subscribed to webhooks", account=account, actor=actor.name)
    return Subscription(account, "feed" in fields, fields)


def subscription_line(app: App, account: str) -> CheckLine:
    """``account check``'s line on webhooks: whether the Page is subscribed (``feed``)."""
    connector = _facebook(app, account)
    try:
        fields = connector.subscribed_fields()
    except Exception as e:  # reported on the line, as every check is
        return CheckLine("webhooks (subscribed_apps)", False, str(e))
    if "feed" in fields:
        return CheckLine("webhooks (subscribed_apps)", True, "the Page sends feed changes")
    return CheckLine(
        "webhooks (subscribed_apps)",
        False,
        "the Page is not subscribed to the app's feed webhooks; subscribe it",
    )


def _facebook(app: App, account: str) -> FacebookConnector:
    from bulletin.connectors.facebook import FacebookConnector

    if account not in app.settings.accounts:
        raise Refused(f"no account {account}")
    connector = app.connector(account)
    if not isinstance(connector, FacebookConnector):
        raise Refused(f"account {account} is not a Facebook Page")
    return connector
