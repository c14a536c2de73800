"""What a webhook receives: the body in its format and the Standard Webhooks signature.

``standard``: ``{"type": ..., "timestamp": ..., "data": {...}}``. ``chat``: ``{"text": ...}``,
which Teams and Slack incoming webhooks show as a message. Every body is signed
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>`` of
``id.timestamp.body`` with the ``whsec_`` secret), whatever its format.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bulletin.events import WebhookEvent

USER_AGENT = "Bulletin-Webhooks/1"


class Hidden(str):
    """A secret whose repr hides it (a traceback's locals show the repr, not the value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'whsec_(hidden)'"


def new_secret() -> Hidden:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return Hidden("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())


def render(event: WebhookEvent, fmt: str) -> bytes:
    """The body of ``event`` in format ``fmt`` (the same bytes on every attempt)."""
    if fmt == "chat":
        document: dict[str, Any] = {"text": chat_text(event.type, event.payload)}
    else:
        document = {
            "type": event.type,
            "timestamp": event.created_at.isoformat(),
            "data": event.payload,
        }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def chat_text(event_type: str, data: dict[str, Any]) -> str:
    """One line for people: the event and its facts, the links (a post's public URL) last."""
    links = [data["url"]] if data.get("url") else []
    links += [p["url"] for p in data.get("posts") or [] if isinstance(p, dict) and p.get("url")]
    facts = [
        f"{key} {value}"
        for key, value in data.items()
        if key != "url" and isinstance(value, str | int | float) and not isinstance(value, bool)
    ]
    return " ".join([f"Bulletin {event_type}: " + ", ".join(facts), *links])


def headers(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The request's headers, signed per Standard Webhooks."""
    from standardwebhooks.webhooks import Webhook as Signer

    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(msg_id, at, body),
    }


def shown_url(url: str) -> str:
    """``url`` fit to print or log: scheme and host only, the rest (which for a chat
    webhook is its credential) elided."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    rest = (parts.path not in ("", "/")) or bool(parts.query)
    return f"{parts.scheme}://{host}/" + ("…" if rest else "")
