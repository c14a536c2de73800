"""The sandbox's own small request and response types, independent of the HTTP server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    """One HTTP request as the handlers see it; header names are lower case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    host: str = "127.0.0.1"

    @cached_property
    def form(self) -> dict[str, str | bytes]:
        """Fields of a urlencoded or multipart body (file parts as bytes)."""
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
            return {k: v[-1] for k, v in parsed.items()}
        if ctype.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body
            )
            fields: dict[str, str | bytes] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not isinstance(name, str):
                    continue
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                if part.get_filename() is None and part.get_content_maintype() == "text":
                    fields[name] = data.decode("utf-8")
                else:
                    fields[name] = data
            return fields
        return {}

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not, or when it holds a
        string no platform stores (a lone surrogate such as ``"\\ud800"``: valid JSON
        syntax, but not Unicode text; kept, it would make every later answer unencodable)."""
        value = json.loads(self.body.decode("utf-8") or "null")
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"the body holds invalid Unicode text: {e.reason}") from None
        return value

    def arg(self, name: str) -> str | None:
        """A parameter from the query string, else from a form body."""
        if name in self.query:
            return self.query[name][-1]
        value = self.form.get(name)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value


@dataclass
class Response:
    """What a handler answers. ``stall`` seconds are waited after the work, before replying.
    ``stream``, when set, is sent after ``body`` in chunks as it yields (a long-lived
    streaming answer, e.g. X's filtered stream), and the connection closes when it ends."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0
    stream: Iterator[bytes] | None = None


def json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with the platforms' content type."""
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    merged = {"content-type": "application/json; charset=utf-8"}
    merged.update(headers or {})
    return Response(status, body, merged)


def encode_cursor(value: Any) -> str:
    """An opaque pagination cursor."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The value inside a cursor made by :func:`encode_cursor`; ValueError when invalid."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as e:
        raise ValueError(f"invalid cursor {cursor!r}") from e


def malform_first_item(response: Response, text_field: str) -> Response:
    """``response`` with the first item of its ``data`` made malformed: its ``text_field``
    holds an object instead of a string, its id and everything else untouched. An answer
    that lists nothing is returned as it is."""
    try:
        body = json.loads(response.body)
    except ValueError:
        return response
    items = body.get("data") if isinstance(body, dict) else None
    first = items[0] if isinstance(items, list) and items else items
    if not isinstance(first, dict):
        return response
    first[text_field] = {"unexpected": "an object where the text belongs"}
    return json_response(response.status, body, response.headers)
