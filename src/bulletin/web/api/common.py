"""What every operation of the HTTP API shares: the bearer token and its scope, RFC 9457
problem details, opaque cursors, and the input types that refuse what the database cannot
store (a NUL, a lone surrogate, a year out of range) before anything else sees it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field
from starlette.responses import JSONResponse

from bulletin.app import Actor, App, tokens
from bulletin.errors import BulletinError, FieldPath, UsageError
from bulletin.web import security

PREFIX = "/api/v1"  # where web.create_app mounts the API
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
MAX_ID = 2**31 - 1  # ids are PostgreSQL integers
PROBLEM = "application/problem+json"
BEARER = HTTPBearer(auto_error=False, description="An API token (`bulletin token create`).")

# How the API says an error's remedy (BulletinError.remedy), appended to its message.
REMEDIES: dict[str, str] = {
    "late-ok": " (send late_ok: true to publish it now anyway)",
    "override": " (approve with overrides and a reason)",
    "reason": " (give a reason)",
    "expires": " (give expires_at too)",
    "target": " (give targets)",
    "text": " (give text)",
    "var": " (give the variable in values)",
    "variant": " (variants give it its own text)",
    "variant-or-thread": " (variants give it its own text; allow_thread posts it as a thread)",
    "approve-template": " (an approver approves the template first)",
    "token-scope": " (create a token that holds it)",
    "new-key": " (send a new Idempotency-Key for a new request)",
    "allow-empty": " (send allow_empty: true to hold only records captured later)",
    "follow-up-in": " (give each language's follow_up, or follow_up_partial: true)",
    "follow-up-in-languages": " (give each language's follow_up in languages, or "
    "follow_up_partial: true)",
}


# How the API names the application layer's fields (BulletinError.field) where its own
# names differ: a language's ``wording`` is ``text_for``, as in the languages file.
FIELD_NAMES: dict[str, str] = {"wording": "text_for"}


def message(e: Exception) -> str:
    """The one line shown for ``e``: the field it is about (``languages.0.lang: ``, as a
    request validation error names it), its message and this door's words for its remedy."""
    remedy = getattr(e, "remedy", None)
    where = ".".join(str(p) for p in body_field(getattr(e, "field", None)))
    return f"{where + ': ' if where else ''}{e}{REMEDIES.get(remedy or '', '')}"


def body_field(field: FieldPath | None) -> FieldPath:
    """The application layer's ``field`` in this door's names (``()`` for none)."""
    return tuple(FIELD_NAMES.get(p, p) if isinstance(p, str) else p for p in field or ())


def pointer(field: FieldPath) -> str:
    """A request body's ``field`` (in this door's names) as an RFC 6901 JSON pointer."""
    parts = (str(p).replace("~", "~0").replace("/", "~1") for p in field)
    return "#" + "".join("/" + p for p in parts)


@contextmanager
def fields_of(body: BaseModel) -> Iterator[None]:
    """Run an action for a request whose body is ``body``: an error about a field the body
    does not have (a template's own text, say) names none."""
    try:
        yield
    except BulletinError as e:
        field = getattr(e, "field", None)
        if field and field[0] not in type(body).model_fields:
            e.field = None
        raise


class FieldError(BaseModel):
    """One field of the request that is wrong (RFC 9457 section 3's ``errors`` member)."""

    detail: str
    pointer: str = Field(
        description="An RFC 6901 JSON pointer to the field in the request body.",
        examples=["#/languages/0/lang"],
    )


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, in one line (``detail``); ``errors`` names the
    request body's field when the problem is about one."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors).model_dump(
        exclude_none=True
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


def _problem_schema() -> dict[str, Any]:
    """Problem's JSON schema with its definitions put in place (a ``#/$defs`` reference
    would point at the root of the OpenAPI document, which has none)."""
    schema = Problem.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    found: dict[str, Any] = inline(schema)
    return found


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": _problem_schema()}},
    }


# Every operation may answer these (documented on each, so clients and schemathesis know).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem_response("Malformed request (JSON, cursor)"),
    401: _problem_response("No usable API token"),
    403: _problem_response("The token's scope or its account's role does not allow it"),
    404: _problem_response("No such object"),
    413: {
        "description": "The body is larger than the web door takes (64 KiB; a new notice "
        "with its images, their size besides)",
        "content": {PROBLEM: {"schema": _problem_schema()}, "text/plain": {}},
    },
    422: _problem_response("A value Bulletin cannot use"),
    503: _problem_response("The database is unavailable"),
}


def bulletin_app(request: Request) -> App:
    app: App = request.app.state.bulletin
    return app


AppDep = Annotated[App, Depends(bulletin_app)]


def scope(needed: str) -> Any:
    """A dependency: the actor of the request's bearer token, when the token holds ``needed``
    (checked in the application layer, :func:`bulletin.app.tokens.require_scope`).

    :raises Unauthenticated: no token or an unusable one (401).
    :raises Refused: the token lacks the scope (403).
    """

    def actor(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> Actor:
        if credentials is None:
            raise tokens.Unauthenticated("no API token came with the request")
        app = bulletin_app(request)
        bearer = tokens.authenticate(app, credentials.credentials, security.address(request))
        return tokens.require_scope(bearer, needed)

    return Depends(actor)


def _printable(value: str) -> str:
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("contains a NUL or an unpaired surrogate")
    return value


def _in_range(value: datetime) -> datetime:
    if not 1970 <= value.year <= 9000:
        raise ValueError("is out of range (years 1970 to 9000)")
    try:
        return value.astimezone(UTC)
    except OverflowError as e:
        raise ValueError("is out of range") from e


Text = Annotated[str, AfterValidator(_printable)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]
When = Annotated[AwareDatetime, AfterValidator(_in_range)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def encode_cursor(last_id: int) -> str:
    """An opaque cursor for the page after the one ending at ``last_id``."""
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor of :func:`encode_cursor` ends at.

    :raises UsageError: a cursor Bulletin did not give.
    """
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        value = int(number)
        if kind != "after" or not 1 <= value <= MAX_ID + 1:
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise UsageError("this cursor is not one Bulletin gave (start again without it)") from e
    return value


class Page(BaseModel):
    """One page of a list: ``next_cursor`` fetches the next (None: this was the last)."""

    next_cursor: str | None = None
