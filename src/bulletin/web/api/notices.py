"""Notices: draft (directly or from a template, exactly once per ``Idempotency-Key``),
approve, send back with a comment, edit, cancel, correct, retract, show, list; and a notice's
deliveries."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from bulletin.app import Actor, App, compose, idempotency, notice_queries, notices
from bulletin.app.media import SERVED_STATES
from bulletin.connectors.base import IMAGE_EXTENSIONS
from bulletin.errors import UsageError
from bulletin.models import Delivery, Notice
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.media import PinnedImage, notice_images
from bulletin.publisher.notices import CancelResult, NoticeDraft
from bulletin.web.api.common import (
    DEFAULT_LIMIT,
    MAX_ID,
    PREFIX,
    PROBLEMS,
    AppDep,
    Limit,
    Name,
    Page,
    Text,
    When,
    decode_cursor,
    encode_cursor,
    fields_of,
    scope,
)

router = APIRouter(tags=["notices"], responses=PROBLEMS)
Reader = Annotated[Actor, scope("notices:read")]
Writer = Annotated[Actor, scope("notices:write")]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID, description="The notice's id.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=idempotency.MAX_KEY,
        description="Makes the request safe to retry: the same key and body give the first "
        "answer again (kept at least 24 hours).",
    ),
]


MediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
#: the most base64 characters one image may take (its bytes at most ``compose.MAX_IMAGE_BYTES``)
MAX_IMAGE_CHARS = 4 * -(-compose.MAX_IMAGE_BYTES // 3)
#: the largest body a new notice's request takes: its images, and a form's worth besides
MAX_NOTICE_BODY = compose.MAX_IMAGES * MAX_IMAGE_CHARS + 64 * 1024
#: a one-pixel PNG, for the schema's examples
EXAMPLE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB4iG8MwAAAABJRU5ErkJggg=="
)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageIn(Input):
    """An image of the notice, its bytes in base64: checked as the console checks an upload
    (a JPEG, PNG, GIF or WebP image by its first bytes, at most 5 MiB), with its alt text,
    and pinned in the archive when the notice is drafted."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "data": EXAMPLE_PNG,
                    "alt": "Photo of Jane Doe, 34, in a red coat.",
                    "name": "jane-doe.png",
                    "mime_type": "image/png",
                }
            ]
        },
    )

    data: str = Field(
        min_length=1,
        description="The image's bytes, base64 (RFC 4648, with padding, no line breaks); "
        f"at most {compose.MAX_IMAGE_BYTES:,} bytes decoded.",
        json_schema_extra={"contentEncoding": "base64"},
    )
    alt: Text = Field(
        min_length=1,
        max_length=5000,
        description="What the image shows, for people who cannot see it (required, not "
        "blank); in the primary language (the others': `languages[].alts`).",
        examples=["Photo of Jane Doe, 34, in a red coat."],
    )
    name: Name | None = Field(
        default=None,
        description="A file name people will recognise it by (default: `image-N`).",
        examples=["jane-doe.png"],
    )
    mime_type: MediaType | None = Field(
        default=None,
        description="Its type, if the client knows it: refused when the bytes are another.",
        examples=["image/png"],
    )


class LanguageIn(Input):
    """The notice in one more of the agency's languages: the same object as an item of
    ``bulletin notice add --languages-file`` (checked by the same rules)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lang": "es",
                    "text": "Calle Main cerrada entre la 1 y la 2 hasta las 6 pm.",
                    "text_for": {"x": "Calle Main cerrada hasta las 6 pm."},
                    "follow_up": "La calle Main está abierta.",
                }
            ]
        },
    )

    lang: Name = Field(
        description="Its BCP 47 language tag: one of the agency's languages (`[agency] "
        "languages`), not the notice's primary and not given twice.",
        examples=["es"],
    )
    text: Text = Field(
        max_length=10_000,
        description="The notice in this language, as the public will read it (not empty).",
        examples=["Calle Main cerrada entre la 1 y la 2 hasta las 6 pm."],
    )
    text_for: dict[Name, Text] = Field(
        default_factory=dict,
        max_length=50,
        description="Other wording in this language for one account or platform (account "
        "or platform name → text), as `variants` gives it for the primary language.",
        examples=[{"x": "Calle Main cerrada hasta las 6 pm."}],
    )
    alts: list[Text] = Field(
        default_factory=list,
        max_length=10,
        description="Alt text of each of the notice's images in this language, in image "
        "order, one per image; empty: the primary language's.",
        examples=[["Mapa de la calle Main cerrada entre la 1 y la 2."]],
    )
    follow_up: Text | None = Field(
        default=None,
        max_length=10_000,
        description="The follow-up in this language, posted at expiry as a reply to this "
        "language's posts; needs the notice's `follow_up`.",
        examples=["La calle Main está abierta."],
    )


class NewNotice(Input):
    """A draft notice: text and category, the accounts it goes to, when; in several
    languages, the primary's text in ``text`` and each other language in ``languages``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "category": "road-closure",
                    "text": "Road closed: Main St between 1st and 2nd until 6 pm.",
                    "targets": ["feed"],
                    "lang": "en",
                    "languages": [
                        {
                            "lang": "es",
                            "text": "Calle Main cerrada entre la 1 y la 2 hasta las 6 pm.",
                        }
                    ],
                }
            ]
        },
    )

    category: Name
    text: Text = Field(min_length=1, max_length=10_000)
    targets: list[Name] = Field(min_length=1, max_length=50)
    title: Text = Field(default="", max_length=500)
    link: Text | None = Field(default=None, max_length=2000)
    publish_at: When | None = None
    expires_at: When | None = None
    late_ok: bool = False
    variants: dict[Name, Text] = Field(default_factory=dict, max_length=50)
    allow_thread: bool = False
    images: list[ImageIn] = Field(
        default_factory=list,
        max_length=compose.MAX_IMAGES,
        description=f"The notice's images, in order (at most {compose.MAX_IMAGES}; a target "
        "may take fewer): posted with each post, each language's alt texts in its "
        "`languages[].alts`.",
    )
    lang: Name | None = Field(
        default=None,
        description="The language of `text` (BCP 47), one of the agency's languages; "
        "default: the agency's first.",
        examples=["en"],
    )
    languages: list[LanguageIn] = Field(
        default_factory=list,
        max_length=20,
        description="The notice in the agency's other languages: a post per language and "
        "account, published together once approved (as `notice add --languages-file`).",
    )
    follow_up: Text | None = Field(
        default=None,
        max_length=10_000,
        description="Posted at expiry as a reply to each published post (needs "
        "`expires_at`); a notice in several languages needs one in each (`languages[].`"
        "`follow_up`) unless `follow_up_partial`.",
        examples=["Main St has reopened."],
    )
    follow_up_partial: bool = Field(
        default=False,
        description="Let a language without its own follow-up go without one at expiry.",
    )


class FromTemplate(Input):
    """A notice from an approved template: its variables' values, the accounts, when."""

    template: Name
    values: dict[Name, Text] = Field(default_factory=dict, max_length=50)
    targets: list[Name] = Field(min_length=1, max_length=50)
    link: Text | None = Field(default=None, max_length=2000)
    publish_at: When | None = None
    expires_at: When | None = None
    late_ok: bool = False
    allow_thread: bool = False
    images: list[ImageIn] = Field(
        default_factory=list,
        max_length=compose.MAX_IMAGES,
        description=f"The notice's images, in order (at most {compose.MAX_IMAGES}), as in "
        "`POST /notices`, their alt texts in the primary language.",
    )


class Approval(Input):
    late_ok: bool = False
    overrides: list[Name] = Field(default_factory=list, max_length=20)
    reason: Text | None = Field(default=None, max_length=2000)


class SendBack(Input):
    comment: Text = Field(min_length=1, max_length=2000)


class Edit(Input):
    """A draft's new text and, optionally, each of its other languages and its follow-up
    in the primary language anew."""

    text: Text = Field(min_length=1, max_length=10_000)
    languages: list[LanguageIn] | None = Field(
        default=None,
        max_length=20,
        description="The notice's other languages from now on, each with its new content: "
        "one it does not have is added, one it has left out is dropped (refused once a post "
        "of it is published); the field left out: they stay as they are.",
    )
    follow_up: Text | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="The follow-up's new text in the primary language, or a follow-up for a "
        "notice without one (it needs an expiry; each other language needs its own in "
        "`languages` unless `follow_up_partial`); left out or null: it stays as it is.",
    )
    remove_follow_up: bool = Field(
        default=False,
        description="Remove the notice's follow-up in every language: nothing is posted at "
        "expiry (not with `follow_up`).",
    )
    follow_up_partial: bool = Field(
        default=False,
        description="Let a language without its own follow-up go without one at expiry.",
    )


class Reason(Input):
    reason: Text = Field(min_length=1, max_length=2000)


class Correction(Input):
    text: Text = Field(min_length=1, max_length=10_000)
    reason: Text = Field(min_length=1, max_length=2000)


class Retraction(Input):
    reason: Text = Field(min_length=1, max_length=2000)
    delete: bool = False
    text: Text | None = Field(default=None, max_length=10_000)
    template: Name | None = None


class LanguageOut(BaseModel):
    """One language of a notice (the primary's is the notice's own text, wording, image alt
    texts and follow-up)."""

    lang: str = Field(description="Its BCP 47 language tag.", examples=["es"])
    text: str
    text_for: dict[str, str] = Field(
        description="Its own wording per account or platform.",
        examples=[{"x": "Calle Main cerrada hasta las 6 pm."}],
    )
    alts: list[str] = Field(
        description="Alt text of each image in this language, in image order (empty: the "
        "primary's)."
    )
    follow_up: str | None = Field(description="Posted at expiry (None: none in this language).")

    @classmethod
    def of(cls, v: LanguageVariant) -> dict[str, Any]:
        return {
            "lang": v.lang,
            "text": v.text,
            "text_for": dict(v.wording),
            "alts": list(v.alts),
            "follow_up": v.follow_up,
        }


class ImageOut(BaseModel):
    """One image of a notice as pinned in the archive (its bytes are not shown here)."""

    sha256: str = Field(description="The SHA-256 of its bytes (hex): its name in the archive.")
    size: int = Field(description="Its size in bytes.")
    mime_type: str = Field(examples=["image/png"])
    name: str = Field(description="The name it was given when drafted.")
    alt: str = Field(description="Its alt text in the primary language.")
    alts: dict[str, str] = Field(
        description="Its alt text in each of the notice's languages (language → alt text; "
        "the primary's where a language gives none).",
        examples=[{"en": "Photo of Jane Doe.", "es": "Foto de Jane Doe."}],
    )
    url: str | None = Field(
        description="Where the web door serves it, public (`/media/{sha256}.{ext}`), once "
        "the notice is approved; None before, and after a cancellation or retraction.",
        examples=["/media/0f3c….png"],
    )

    @classmethod
    def each(
        cls, n: Notice, images: list[PinnedImage], languages: list[LanguageVariant]
    ) -> list[dict[str, Any]]:
        """The notice's images as shown, with each language's alt text."""
        served = n.state in {s.value for s in SERVED_STATES}
        out = []
        for k, image in enumerate(images):
            ext = IMAGE_EXTENSIONS.get(image.mime_type)
            alts = {v.lang: v.alts[k] if k < len(v.alts) else image.alt for v in languages}
            out.append(
                {
                    "sha256": image.sha256,
                    "size": image.size,
                    "mime_type": image.mime_type,
                    "name": image.name,
                    "alt": image.alt,
                    "alts": alts,
                    "url": f"/media/{image.sha256}.{ext}" if served and ext else None,
                }
            )
        return out


class NoticeOut(BaseModel):
    """A notice as shown: ``revision`` counts its drafts' edits; ``sent_back`` is an
    approver's comment waiting for the author's edit; ``lang`` is its primary language."""

    id: int
    state: str
    revision: int
    sent_back: str | None
    category: str
    priority: str
    title: str
    text: str
    link: str | None
    author: str
    created_at: datetime
    publish_at: datetime | None
    expires_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    approvals_needed: int
    closed_reason: str | None
    lang: str = Field(description="The language of `text` (BCP 47).", examples=["en"])

    @classmethod
    def of(cls, n: Notice) -> dict[str, Any]:
        return {name: getattr(n, name) for name in cls.model_fields}


class DeliveryOut(BaseModel):
    """One notice to one account (one occurrence, or a reply or deletion)."""

    id: int
    account: str
    kind: str
    occurrence: int
    revision: int
    state: str
    due_at: datetime | None
    attempts: int
    published_at: datetime | None
    remote_url: str | None
    last_error: str | None
    lang: str = Field(
        description="The language it posts (BCP 47; empty: the notice's primary).",
        examples=["es"],
    )

    @classmethod
    def of(cls, d: Delivery) -> dict[str, Any]:
        return {name: getattr(d, name) for name in cls.model_fields}


class Deliveries(BaseModel):
    items: list[DeliveryOut]


class Drafted(NoticeOut):
    """A notice just drafted (or, for a repeated Idempotency-Key, the one drafted first)."""

    languages: list[LanguageOut] = Field(description="Its languages, the primary first.")
    images: list[ImageOut] = Field(description="Its images, in order.")
    review: dict[str, Any]
    template: str | None
    covered_by: str | None
    daemon_notified: bool


class ApprovalOut(BaseModel):
    approver: str
    at: datetime
    via_template: str | None
    overrides: list[str]
    reason: str | None


class NoticeDetail(NoticeOut):
    """One notice in full: its languages, deliveries and approvals."""

    languages: list[LanguageOut] = Field(description="Its languages, the primary first.")
    images: list[ImageOut] = Field(description="Its images, in order.")
    deliveries: list[DeliveryOut]
    approvals: list[ApprovalOut]
    review: dict[str, Any]


class NoticeRow(NoticeOut):
    """A notice as listed: its current deliveries' states and problems, by label."""

    deliveries: dict[str, str]
    problems: dict[str, str]
    next_due: datetime | None


class NoticePage(Page):
    items: list[NoticeRow]


class Approved(BaseModel):
    notice: NoticeOut
    approvals: int
    daemon_notified: bool


class Cancelled(BaseModel):
    notice: NoticeOut
    cancelled: list[str]
    too_late: dict[str, str]


class Amended(BaseModel):
    notice_id: int
    queued: list[str]
    cancelled: list[str]
    in_flight: list[str]
    daemon_notified: bool


def variants_in(given: list[LanguageIn]) -> list[LanguageVariant]:
    """The languages of a request as the application layer takes them."""
    return [LanguageVariant(v.lang, v.text, v.text_for, v.alts, v.follow_up) for v in given]


def images_in(given: list[ImageIn]) -> list[compose.GivenImage]:
    """The images of a request, decoded.

    :raises UsageError: one whose ``data`` is not base64 (its field: ``images/N/data``).
    """
    out = []
    for n, image in enumerate(given):
        try:
            data = base64.b64decode(image.data, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(
                f"image {n + 1}: data is not base64 (RFC 4648, with padding, no line breaks)",
                field=("images", n, "data"),
            ) from None
        name = image.name or f"image-{n + 1}"
        out.append(compose.GivenImage(data, image.alt, name, image.mime_type))
    return out


def _drafted(made: notices.Drafted) -> dict[str, Any]:
    return {
        **NoticeOut.of(made.notice),
        "languages": [LanguageOut.of(v) for v in made.languages],
        "images": ImageOut.each(made.notice, notice_images(made.notice), made.languages),
        "review": made.review.as_json(),
        "template": made.template,
        "covered_by": made.covered_by,
        "daemon_notified": made.woke,
    }


def _create(
    app: App,
    actor: Actor,
    response: Response,
    draft: NoticeDraft,
    key: str | None,
    body: BaseModel,
    template: str | None = None,
    values: dict[str, str] | None = None,
    images: list[ImageIn] | None = None,
) -> dict[str, Any]:
    once = None
    if key is not None:
        request = {"path": template is not None, "body": body.model_dump(mode="json")}
        once = idempotency.Claim.of(actor.name, key, request, 201)
    with fields_of(body):
        if images:
            compose.require_drafter(app, actor)  # before decoding what may be 28 MB
            given = images_in(images)
            made = compose.draft_given(
                app, actor, draft, given, template=template, values=values, once=once
            )
        else:
            made = notices.draft(app, actor, draft, template=template, values=values, once=once)
    response.headers["Location"] = f"{PREFIX}/notices/{made.notice.id}"
    if made.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _drafted(made)


@router.post("/notices", status_code=201, response_model=Drafted, summary="Draft a notice")
def create_notice(
    app: AppDep,
    actor: Writer,
    body: NewNotice,
    response: Response,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Draft a notice for an approver (a dispatcher's action)."""
    draft = NoticeDraft(
        category=body.category,
        text=body.text,
        targets=body.targets,
        title=body.title,
        link=body.link,
        publish_at=body.publish_at,
        expires_at=body.expires_at,
        late_ok=body.late_ok,
        variants=body.variants,
        allow_thread=body.allow_thread,
        follow_up=body.follow_up,
        follow_up_partial=body.follow_up_partial,
        lang=body.lang,
        languages=variants_in(body.languages),
    )
    return _create(app, actor, response, draft, key, body, images=body.images)


@router.post(
    "/notices/from-template",
    status_code=201,
    response_model=Drafted,
    summary="Draft a notice from a template",
)
def create_from_template(
    app: AppDep,
    actor: Writer,
    body: FromTemplate,
    response: Response,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Fill in an approved template; approved at once when the template's approval covers it."""
    draft = NoticeDraft(
        category="",
        text="",
        targets=body.targets,
        link=body.link,
        publish_at=body.publish_at,
        expires_at=body.expires_at,
        late_ok=body.late_ok,
        allow_thread=body.allow_thread,
    )
    return _create(app, actor, response, draft, key, body, body.template, body.values, body.images)


@router.get("/notices", response_model=NoticePage, summary="List notices")
def list_notices(
    app: AppDep,
    actor: Reader,
    state: Annotated[Text | None, Query(max_length=50)] = None,
    category: Annotated[Text | None, Query(max_length=200)] = None,
    since: Annotated[When | None, Query(description="Drafted at or after")] = None,
    limit: Annotated[Limit, Query()] = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Notices, newest first, a page at a time."""
    before = decode_cursor(cursor)
    rows = notice_queries.list_notices(
        app, state, limit + 1, category=category, since=since, before=before
    )
    items = [
        {
            **NoticeOut.of(r.notice),
            "deliveries": r.deliveries,
            "problems": r.problems,
            "next_due": r.next_due,
        }
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None}


@router.get("/notices/{notice_id}", response_model=NoticeDetail, summary="Show a notice")
def show_notice(notice_id: NoticeId, app: AppDep, actor: Reader) -> dict[str, Any]:
    view = notice_queries.show_notice(app, notice_id)
    return {
        **NoticeOut.of(view.notice),
        "languages": [LanguageOut.of(v) for v in view.languages],
        "images": ImageOut.each(view.notice, view.images, view.languages),
        "deliveries": [DeliveryOut.of(d) for d in view.deliveries],
        "approvals": [vars(a) for a in view.approvals],
        "review": view.review.as_json(),
    }


@router.get(
    "/notices/{notice_id}/deliveries",
    response_model=Deliveries,
    summary="A notice's deliveries",
)
def notice_deliveries(notice_id: NoticeId, app: AppDep, actor: Reader) -> dict[str, Any]:
    view = notice_queries.show_notice(app, notice_id)
    return {"items": [DeliveryOut.of(d) for d in view.deliveries]}


@router.post("/notices/{notice_id}/approve", response_model=Approved, summary="Approve")
def approve(
    app: AppDep,
    actor: Writer,
    notice_id: NoticeId,
    body: Approval | None = None,
) -> dict[str, Any]:
    """Record the token's account's approval (an approver's; never the author's own)."""
    body = body or Approval()
    done = notices.approve(
        app,
        actor,
        notice_id,
        late_ok=body.late_ok,
        overrides=body.overrides,
        reason=body.reason,
    )
    return {
        "notice": NoticeOut.of(done.notice),
        "approvals": done.approvals,
        "daemon_notified": done.woke,
    }


@router.post("/notices/{notice_id}/send-back", response_model=NoticeOut, summary="Send back")
def send_back(notice_id: NoticeId, body: SendBack, app: AppDep, actor: Writer) -> dict[str, Any]:
    """Send a draft back to its author with a comment (an approver's; never on their own
    notice); nobody may approve it until the author edits it."""
    return NoticeOut.of(notices.send_back(app, actor, notice_id, body.comment))


@router.post("/notices/{notice_id}/edit", response_model=NoticeOut, summary="Edit a draft")
def edit(notice_id: NoticeId, body: Edit, app: AppDep, actor: Writer) -> dict[str, Any]:
    """Give a draft new text, and with ``languages`` its other languages anew, adding or
    dropping one, with ``follow_up`` a follow-up's new text (or one it did not have), with
    ``remove_follow_up`` none (its author's): a new revision, whose approvals start over."""
    languages = None if body.languages is None else variants_in(body.languages)
    with fields_of(body):
        return NoticeOut.of(
            notices.edit(
                app,
                actor,
                notice_id,
                body.text,
                languages,
                body.follow_up,
                remove_follow_up=body.remove_follow_up,
                follow_up_partial=body.follow_up_partial,
            )
        )


def _cancelled(result: CancelResult) -> dict[str, Any]:
    return {
        "notice": NoticeOut.of(result.notice),
        "cancelled": sorted(set(result.cancelled)),
        "too_late": result.too_late,
    }


@router.post("/notices/{notice_id}/cancel", response_model=Cancelled, summary="Cancel")
def cancel(notice_id: NoticeId, body: Reason, app: AppDep, actor: Writer) -> dict[str, Any]:
    """Cancel what has not gone out."""
    return _cancelled(notices.cancel(app, actor, notice_id, body.reason))


def _amended(done: notices.Amended) -> dict[str, Any]:
    a = done.amendment
    return {
        "notice_id": a.notice_id,
        "queued": [account for account, _ in a.queued],
        "cancelled": a.cancelled,
        "in_flight": a.in_flight,
        "daemon_notified": done.woke,
    }


@router.post("/notices/{notice_id}/correct", response_model=Amended, summary="Correct")
def correct(notice_id: NoticeId, body: Correction, app: AppDep, actor: Writer) -> dict[str, Any]:
    """Reply with a correction to every published post (an approver's)."""
    return _amended(notices.correct(app, actor, notice_id, body.text, body.reason))


@router.post("/notices/{notice_id}/retract", response_model=Amended, summary="Retract")
def retract(notice_id: NoticeId, body: Retraction, app: AppDep, actor: Writer) -> dict[str, Any]:
    """Withdraw the notice everywhere (a reply, or deletion with ``delete``)."""
    done = notices.retract(
        app,
        actor,
        notice_id,
        body.reason,
        delete=body.delete,
        text=body.text,
        template=body.template,
    )
    return _amended(done)
