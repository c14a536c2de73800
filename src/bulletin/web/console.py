"""The dispatcher's and approver's console: the board, one notice (and the actions after
publishing: cancel, post an update, correct, retract), the approval queue (approve, override,
send back), editing a draft, and composing a notice (from a template too).

Each handler finds who is signed in (else it sends them to sign in and back), calls one
application-layer function with that :class:`~bulletin.app.Actor` (which checks the role)
and renders a template; ``?format=json`` (or ``.json``) gives the same data as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bulletin.app import (
    board,
    compose,
    notices,
    notify,
    template_review,
    templates,
    updates,
)
from bulletin.app.follow_ups import FollowUp
from bulletin.app.notice_queries import NoticeView
from bulletin.app.sessions import SignedIn
from bulletin.errors import BulletinError, NotFound, Refused, UsageError
from bulletin.publisher.amend import Amendment
from bulletin.publisher.approval import Review
from bulletin.publisher.failures import NOTICE_STATES, delivery_label
from bulletin.publisher.languages import LanguageVariant, display_name
from bulletin.publisher.notices import NoticeDraft
from bulletin.publisher.recurrence import parse_every
from bulletin.publisher.texts import TargetText, as_sent
from bulletin.states import DeliveryState
from bulletin.timeparse import local_text, parse_until, parse_when
from bulletin.web import edit_form, security
from bulletin.web.pages import Pages, message

APPROVE = "approve"
SEND_BACK = "send-back"
EDIT = "edit"
COMPOSE = "compose"
CANCEL = "cancel"
CORRECT = "correct"
UPDATE = "update"
LATE = "late"
RETRY = "retry"
TEMPLATE = "template"
#: the board's filters besides the state (query parameter → what it narrows)
FILTERS = ("category", "account", "text", "day")
RETRACT = "retract"
UPLOAD_PATH = "/notices/new/image"
#: an upload's image at most (the application layer checks it again, with its own limit)
MAX_UPLOAD = compose.MAX_IMAGE_BYTES
#: choices of the compose form's "repeat" (beside a rule of one's own)
EVERY = {"": "Does not repeat", **{w: f"Every {w}" for w in ("day", "weekday", "week", "month")}}
#: the states whose page offers correct and retract (the application layer decides)
AMENDABLE = ("published", "partially-published")


def routes(pages: Pages, max_body: int) -> list[BaseRoute]:
    """The console's routes, bound to ``pages``; a form bigger than ``max_body`` bytes gets
    413."""
    console = Console(pages)
    return [
        Route("/notices", console.board, methods=["GET"]),
        Route("/notices.json", console.board, methods=["GET"]),
        Route("/notices/week", console.week, methods=["GET"]),
        Route("/notices/week.json", console.week, methods=["GET"]),
        Route(
            "/notices/{notice_id:int}/late",
            console.late,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route("/notices/new", console.compose_page, methods=["GET"]),
        Route("/notices/new", console.compose, methods=["POST"], max_body_size=max_body),
        # the compose form with one image: the image's bytes and the form around them
        Route(UPLOAD_PATH, console.upload, methods=["POST"], max_body_size=MAX_UPLOAD + max_body),
        Route("/notices/{notice_id:int}", console.notice, methods=["GET"]),
        Route("/notices/{notice_id:int}.json", console.notice, methods=["GET"]),
        Route(
            "/notices/{notice_id:int}/cancel",
            console.cancel,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/notices/{notice_id:int}/retry",
            console.retry,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/notices/{notice_id:int}/update",
            console.update,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/notices/{notice_id:int}/correct",
            console.correct,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route(
            "/notices/{notice_id:int}/retract",
            console.retract,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route("/templates", console.templates, methods=["GET"]),
        Route("/templates/{name}", console.template, methods=["GET"]),
        Route(
            "/templates/{name}/approve",
            console.approve_template,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route("/approvals", console.approvals, methods=["GET"]),
        Route("/approvals.json", console.approvals, methods=["GET"]),
        Route("/approvals/{notice_id:int}", console.approval_link, methods=["GET"]),
        Route(
            "/approvals/{notice_id:int}", console.approve, methods=["POST"], max_body_size=max_body
        ),
        Route(
            "/approvals/{notice_id:int}/send-back",
            console.send_back,
            methods=["POST"],
            max_body_size=max_body,
        ),
        Route("/notices/{notice_id:int}/edit", console.edit_page, methods=["GET"]),
        Route(
            "/notices/{notice_id:int}/edit", console.edit, methods=["POST"], max_body_size=max_body
        ),
    ]


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json") or request.query_params.get("format") == "json"


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _day(given: str | None, name: str) -> date | None:
    """The date in query parameter ``name`` (YYYY-MM-DD), or None when empty.

    :raises UsageError: not a date."""
    if not given:
        return None
    try:
        return date.fromisoformat(given)
    except ValueError:
        raise UsageError(f"{name}={given!r}: give a date as YYYY-MM-DD") from None


class Console:
    """The console's handlers."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.app = pages.app
        zone = self.app.settings.agency.time_zone
        filters: dict[str, Callable[..., Any]] = {
            "local": lambda at: local_text(at, zone),
            "clock": lambda at: at.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z"),
            "as_sent": preview,
            "language_name": display_name,
        }
        pages.templates.env.filters.update(filters)

    async def who(self, request: Request) -> SignedIn:
        """The signed-in person; else a redirect to sign in (and come back here)."""
        found = await self.pages.signed_in(request)
        if found is None:
            back = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            raise HTTPException(303, "Sign in first", headers={"Location": f"/sign-in?next={back}"})
        return found

    def render(
        self, request: Request, who: SignedIn, template: str, status: int = 200, **context: Any
    ) -> Response:
        return self.pages.render(
            request, template, status, user=who.actor.name, roles=who.roles, **context
        )

    # -- the board ---------------------------------------------------------------------

    async def board(self, request: Request) -> Response:
        who = await self.who(request)
        return await self._board(request, who, None, None, 200)

    async def _board(
        self, request: Request, who: SignedIn, error: str | None, done: str | None, status: int
    ) -> Response:
        state = request.query_params.get("state") or None
        narrow = {k: request.query_params.get(k, "").strip() or None for k in FILTERS}
        day = _day(narrow["day"], "day")
        shown = await run_in_threadpool(
            lambda: board.board(
                self.app,
                who.actor,
                state,
                category=narrow["category"],
                account=narrow["account"],
                text=narrow["text"],
                day=day,
            )
        )
        if wants_json(request):
            return JSONResponse(
                {
                    "state": state,
                    **narrow,
                    "notices": [board_row_json(r) for r in shown.rows],
                    "late": [
                        {
                            "id": n.notice_id,
                            "category": n.category,
                            "due_at": iso(n.due_at),
                            "accounts": n.accounts,
                            "occurrence": n.occurrence,
                        }
                        for n in shown.late
                    ],
                }
            )
        query = request.url.query
        return self.render(
            request,
            who,
            "notices.html",
            status,
            board=shown,
            state=state,
            states=NOTICE_STATES,
            narrow=narrow,
            categories=sorted(self.app.settings.publisher.categories),
            accounts=sorted(self.app.settings.accounts),
            query=query,
            error=error,
            done=done,
            csrf_late=security.form_token(who.csrf_secret, LATE),
            csrf_retry=security.form_token(who.csrf_secret, RETRY),
        )

    async def late(self, request: Request) -> Response:
        """Publish now, or cancel, a notice's posts late after downtime (the application
        layer decides who may: publishing takes an approver); back to the board."""
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, LATE)
        notice_id = int(request.path_params["notice_id"])
        publish = form.get("decision") == "publish"
        reason = str(form.get("reason", "")).strip() or None
        try:
            decided = await run_in_threadpool(
                lambda: notices.decide_late(self.app, who.actor, notice_id, publish, reason)
            )
        except Refused as e:
            return await self._board(request, who, message(e), None, 403)
        except UsageError as e:
            return await self._board(request, who, message(e), None, 400)
        what = "sent on now" if publish else "cancelled"
        accounts = ", ".join(decided.accounts) or "no account"
        return await self._board(
            request, who, None, f"Notice {notice_id}: late posts {what} ({accounts}).", 200
        )

    async def retry(self, request: Request) -> Response:
        """Send a notice's failed posts again (the application layer decides); back to the
        board with what was done or why not."""
        who = await self.who(request)
        await self.pages.checked_form(request, who.csrf_secret, RETRY)
        notice_id = int(request.path_params["notice_id"])
        try:
            done = await run_in_threadpool(updates.retry, self.app, who.actor, notice_id)
        except Refused as e:
            return await self._board(request, who, message(e), None, 403)
        accounts = ", ".join(done.accounts)
        return await self._board(
            request, who, None, f"Notice {notice_id}: failed posts sent again ({accounts}).", 200
        )

    async def week(self, request: Request) -> Response:
        """The week's scheduled and recurring notices, day by day in the agency's zone;
        ``?from=YYYY-MM-DD`` starts it elsewhere."""
        who = await self.who(request)
        start = _day(request.query_params.get("from", ""), "from")
        days = await run_in_threadpool(board.week, self.app, who.actor, start)
        if wants_json(request):
            return JSONResponse(
                {
                    "days": [
                        {
                            "date": d.day.isoformat(),
                            "entries": [
                                {
                                    "at": iso(e.at),
                                    "id": e.notice_id,
                                    "category": e.category,
                                    "title": e.title,
                                    "accounts": e.accounts,
                                    "recurring": e.recurring,
                                    "draft": e.draft,
                                }
                                for e in d.entries
                            ],
                            "more": d.more,
                            "board": f"/notices?day={d.day.isoformat()}",
                        }
                        for d in days
                    ]
                }
            )
        first = days[0].day
        return self.render(
            request,
            who,
            "week.html",
            days=days,
            per_day=board.PER_DAY,
            zone=self.app.settings.agency.time_zone,
            earlier=(first - timedelta(days=7)).isoformat(),
            later=(first + timedelta(days=7)).isoformat(),
        )

    async def notice(self, request: Request) -> Response:
        who = await self.who(request)
        notice_id = int(request.path_params["notice_id"])
        page = await run_in_threadpool(board.notice_page, self.app, who.actor, notice_id)
        if wants_json(request):
            return JSONResponse(
                view_json(page.view)
                | {
                    "audit": [
                        {
                            "at": iso(t.event.at),
                            "actor": t.event.actor,
                            "action": t.event.action,
                            "about": t.about,
                            "reason": t.event.reason,
                            "via": t.event.via,
                        }
                        for t in page.trail
                    ]
                }
            )
        return await self._notice_page(request, who, None, None, {}, 200)

    async def _notice_page(
        self,
        request: Request,
        who: SignedIn,
        error: str | None,
        done: Outcome | None,
        given: dict[str, str],
        status: int,
    ) -> Response:
        """The notice's page with its action forms, ``done`` (what an action did) or
        ``error`` (why the application layer refused it), and what was typed (``given``)."""
        notice_id = int(request.path_params["notice_id"])
        page = await run_in_threadpool(board.notice_page, self.app, who.actor, notice_id)
        replies: list[str] = []
        if page.view.notice.state in AMENDABLE:
            found = await run_in_threadpool(templates.list_all, self.app)
            replies = [t.name for t in found if t.approved_by and not t.variables]
        return self.render(
            request,
            who,
            "notice.html",
            status,
            page=page,
            view=page.view,
            replies=replies,
            amendable=AMENDABLE,
            error=error,
            done=done,
            given=given,
            csrf_cancel=security.form_token(who.csrf_secret, CANCEL),
            csrf_correct=security.form_token(who.csrf_secret, CORRECT),
            csrf_update=security.form_token(who.csrf_secret, UPDATE),
            csrf_retract=security.form_token(who.csrf_secret, RETRACT),
        )

    # -- after publishing: cancel, correct, retract -----------------------------------

    async def cancel(self, request: Request) -> Response:
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, CANCEL)
        notice_id = int(request.path_params["notice_id"])
        given = {"cancel_reason": str(form.get("reason", ""))}

        def act() -> Outcome:
            result = notices.cancel(self.app, who.actor, notice_id, given["cancel_reason"])
            return Outcome(
                f"Notice {notice_id} is {result.notice.state}.",
                cancelled=sorted(set(result.cancelled)),
                in_flight=sorted(
                    a for a, s in result.too_late.items() if s == DeliveryState.IN_FLIGHT
                ),
                too_late={a: s for a, s in result.too_late.items() if s != DeliveryState.IN_FLIGHT},
            )

        return await self._act(request, who, given, act)

    async def correct(self, request: Request) -> Response:
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, CORRECT)
        notice_id = int(request.path_params["notice_id"])
        given = {
            "correct_text": str(form.get("text", "")),
            "correct_reason": str(form.get("reason", "")),
            **reply_languages(form, "correct"),
        }

        def act() -> Outcome:
            done = notices.correct(
                self.app,
                who.actor,
                notice_id,
                given["correct_text"],
                given["correct_reason"],
                texts=given_texts(given, "correct"),
                partial=bool(given["correct_partial"]),
            )
            return amended(f"Correction of notice {notice_id} queued.", done.amendment)

        return await self._act(request, who, given, act)

    async def update(self, request: Request) -> Response:
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, UPDATE)
        notice_id = int(request.path_params["notice_id"])
        given = {"update_text": str(form.get("text", "")), **reply_languages(form, "update")}

        def act() -> Outcome:
            done = updates.post_update(
                self.app,
                who.actor,
                notice_id,
                given["update_text"],
                texts=given_texts(given, "update"),
                partial=bool(given["update_partial"]),
            )
            return amended(f"Update of notice {notice_id} queued.", done.amendment)

        return await self._act(request, who, given, act)

    async def retract(self, request: Request) -> Response:
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, RETRACT)
        notice_id = int(request.path_params["notice_id"])
        given = {
            "retract_reason": str(form.get("reason", "")),
            "retract_text": str(form.get("text", "")),
            "retract_delete": "1" if form.get("delete") else "",
            "retract_template": str(form.get("template", "")),
        }
        delete = bool(given["retract_delete"])

        def act() -> Outcome:
            done = notices.retract(
                self.app,
                who.actor,
                notice_id,
                given["retract_reason"],
                delete=delete,
                text=given["retract_text"].strip() or None,
                template=given["retract_template"] or None,
            )
            what = "Deletion" if delete else "Retraction"
            return amended(f"{what} of notice {notice_id} queued.", done.amendment)

        return await self._act(request, who, given, act)

    async def _act(
        self, request: Request, who: SignedIn, given: dict[str, str], act: Callable[[], Outcome]
    ) -> Response:
        """Run ``act`` (one application-layer call) and show the notice with its outcome, or
        with the refusal: 403 for :class:`Refused`, 400 for :class:`UsageError`."""
        try:
            done = await run_in_threadpool(act)
        except Refused as e:
            return await self._notice_page(request, who, message(e), None, given, 403)
        except UsageError as e:
            return await self._notice_page(request, who, message(e), None, given, 400)
        return await self._notice_page(request, who, None, done, {}, 200)

    # -- templates ---------------------------------------------------------------------

    async def templates(self, request: Request) -> Response:
        who = await self.who(request)
        found = await run_in_threadpool(template_review.listing, self.app, who.actor)
        return self.render(request, who, "templates.html", found=found)

    async def template(self, request: Request) -> Response:
        who = await self.who(request)
        return await self._template(request, who, None, None, 200)

    async def _template(
        self, request: Request, who: SignedIn, error: str | None, done: str | None, status: int
    ) -> Response:
        name = str(request.path_params["name"])
        shown = await run_in_threadpool(template_review.review, self.app, who.actor, name)
        return self.render(
            request,
            who,
            "template.html",
            status,
            shown=shown,
            error=error,
            done=done,
            csrf=security.form_token(who.csrf_secret, TEMPLATE),
        )

    async def approve_template(self, request: Request) -> Response:
        """Approve a template's newest version; the application layer refuses a person who
        is not an approver, its author, or a policy finding."""
        who = await self.who(request)
        await self.pages.checked_form(request, who.csrf_secret, TEMPLATE)
        name = str(request.path_params["name"])
        try:
            done = await run_in_threadpool(templates.approve, self.app, who.actor, name)
        except Refused as e:
            return await self._template(request, who, message(e), None, 403)
        return await self._template(
            request, who, None, f"Version {done.version} of {name} is approved.", 200
        )

    # -- approvals ---------------------------------------------------------------------

    async def approvals(self, request: Request) -> Response:
        who = await self.who(request)
        return await self._queue(request, who, None, None, 200)

    async def approval_link(self, request: Request) -> Response:
        """The link an approval email carries: signed in, its one-time token is used up and
        the approver lands on the queue at that notice (the token leaves the address bar)."""
        who = await self.who(request)
        notice_id = int(request.path_params["notice_id"])
        token = request.query_params.get("t", "")
        if token:
            try:
                await run_in_threadpool(
                    notify.verify_approval_link, self.app, who.actor, notice_id, token
                )
            except Refused as e:
                return await self._queue(request, who, message(e), None, 403)
        return RedirectResponse(f"/approvals#n{notice_id}-heading", status_code=303)

    async def _queue(
        self, request: Request, who: SignedIn, error: str | None, done: str | None, status: int
    ) -> Response:
        queue = await run_in_threadpool(board.approval_queue, self.app, who.actor)
        if wants_json(request):
            return JSONResponse({"notices": [view_json(v) for v in queue]})
        return self.render(
            request,
            who,
            "approvals.html",
            status,
            queue=queue,
            error=error,
            done=done or request.query_params.get("done"),
            csrf=security.form_token(who.csrf_secret, APPROVE),
            csrf_back=security.form_token(who.csrf_secret, SEND_BACK),
        )

    async def approve(self, request: Request) -> Response:
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, APPROVE)
        notice_id = int(request.path_params["notice_id"])
        overrides = [str(o) for o in form.getlist("override")]
        reason = str(form.get("reason", "")).strip() or None
        try:
            if form.get("with_override") and not overrides:
                raise UsageError("choose the rule to override")
            done = await run_in_threadpool(
                lambda: notices.approve(
                    self.app, who.actor, notice_id, overrides=overrides, reason=reason
                )
            )
        except Refused as e:
            return await self._queue(request, who, message(e), None, 403)
        except UsageError as e:
            return await self._queue(request, who, message(e), None, 400)
        note = f"approved-{notice_id}" if done.notice.state != "draft" else f"noted-{notice_id}"
        return RedirectResponse(f"/approvals?done={note}", status_code=303)

    async def send_back(self, request: Request) -> Response:
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, SEND_BACK)
        notice_id = int(request.path_params["notice_id"])
        comment = str(form.get("comment", ""))
        try:
            await run_in_threadpool(notices.send_back, self.app, who.actor, notice_id, comment)
        except Refused as e:
            return await self._queue(request, who, message(e), None, 403)
        except UsageError as e:
            return await self._queue(request, who, message(e), None, 400)
        return RedirectResponse(f"/approvals?done=sent-{notice_id}", status_code=303)

    # -- editing a draft ---------------------------------------------------------------

    async def edit_page(self, request: Request) -> Response:
        who = await self.who(request)
        return await self._edit_form(request, who, None, None, 200)

    async def _edit_form(
        self,
        request: Request,
        who: SignedIn,
        given: edit_form.EditForm | None,
        error: BulletinError | None,
        status: int,
    ) -> Response:
        """The edit form of the notice with what was typed (``given``; None: the notice as
        it is) and ``error`` shown next to the field it names (else above the form)."""
        notice_id = int(request.path_params["notice_id"])
        page = await run_in_threadpool(board.notice_page, self.app, who.actor, notice_id)
        shown = edit_form.of_notice(page.view) if given is None else given
        has = [v.lang for v in page.view.languages[1:]]
        primary = page.view.notice.lang
        addable = [t for t in self.app.settings.agency.languages if t not in (primary, *has)]
        return self.render(
            request,
            who,
            "edit.html",
            status,
            view=page.view,
            given=shown,
            has=has,
            addable=addable,
            empty=edit_form.TypedLanguage(),
            accounts=edit_form.accounts_by_language(page.view),
            error=message(error) if error else None,
            error_at=edit_form.field_id(error, shown) if error else None,
            csrf=security.form_token(who.csrf_secret, EDIT),
        )

    async def edit(self, request: Request) -> Response:
        """Save the draft's new revision: its text, its follow-up (changed, added when typed
        for a notice without one, or removed with its box) and its other languages (each the
        notice has unless ticked to drop, each other one whose text is typed), through the
        edit the API and command line make."""
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, EDIT)
        notice_id = int(request.path_params["notice_id"])
        page = await run_in_threadpool(board.notice_page, self.app, who.actor, notice_id)
        given = edit_form.of_form(form, [v.lang for v in page.view.languages[1:]])
        try:
            await run_in_threadpool(
                notices.edit,
                self.app,
                who.actor,
                notice_id,
                given.text,
                edit_form.variants(given),
                edit_form.follow_up(given, page.view.notice.follow_up is not None),
                remove_follow_up=given.remove_follow_up,
                follow_up_partial=given.follow_up_partial,
            )
        except Refused as e:
            return await self._edit_form(request, who, given, e, 403)
        except UsageError as e:
            return await self._edit_form(request, who, given, e, 400)
        return RedirectResponse(f"/notices/{notice_id}", status_code=303)

    # -- composing a notice ------------------------------------------------------------

    async def compose_page(self, request: Request) -> Response:
        who = await self.who(request)
        given = {"template": request.query_params.get("template", "")}
        return await self._compose_form(request, who, given, None, None, 200)

    async def _compose_form(
        self,
        request: Request,
        who: SignedIn,
        given: dict[str, Any],
        shown: compose.ComposePreview | None,
        error: str | None,
        status: int,
    ) -> Response:
        choices = await run_in_threadpool(notices.draft_choices, self.app, who.actor)
        name = given.get("template") or ""
        template = next((t for t in choices.templates if t.name == name), None)
        if name and template is None:
            raise NotFound(f"no approved template {name!r}")
        return self.render(
            request,
            who,
            "compose_template.html" if template else "compose.html",
            status,
            choices=choices,
            chosen=template,
            given=given,
            review=shown.review if shown else None,
            shown=shown,
            every=EVERY,
            max_upload=MAX_UPLOAD,
            upload_path=UPLOAD_PATH,
            error=error,
            zone=self.app.settings.agency.time_zone,
            csrf=security.form_token(who.csrf_secret, COMPOSE),
        )

    async def compose(self, request: Request) -> Response:
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, COMPOSE)
        given = compose_given(form)
        action = str(form.get("action", ""))
        try:
            draft = self._draft(given)
            images = await run_in_threadpool(
                compose.uploaded, self.app, who.actor, image_triples(given)
            )
            if given["template"]:
                made = await run_in_threadpool(
                    lambda: compose.draft(
                        self.app,
                        who.actor,
                        draft,
                        images,
                        template=given["template"],
                        values=given["values"],
                    )
                )
            elif action == "preview":
                shown = await run_in_threadpool(compose.preview, self.app, who.actor, draft, images)
                return await self._compose_form(request, who, given, shown, None, 200)
            else:
                made = await run_in_threadpool(compose.draft, self.app, who.actor, draft, images)
        except Refused as e:
            return await self._compose_form(request, who, given, None, message(e), 403)
        except UsageError as e:
            return await self._compose_form(request, who, given, None, message(e), 400)
        return RedirectResponse(f"/notices/{made.notice.id}", status_code=303)

    async def upload(self, request: Request) -> Response:
        """The compose form sent with an image to add: the image goes into the archive
        store (the application layer checks its type and size) and the form comes back with
        it listed, its size and sha256 shown, and all that was typed."""
        who = await self.who(request)
        form = await self.pages.checked_form(request, who.csrf_secret, COMPOSE)
        given = compose_given(form)
        upload = form.get("image")
        try:
            if isinstance(upload, str) or upload is None or not upload.filename:
                raise UsageError("choose an image file to upload")
            if len(given["images"]) >= compose.MAX_IMAGES:
                raise UsageError(f"a notice carries at most {compose.MAX_IMAGES} images")
            data = await upload.read(MAX_UPLOAD + 1)
            priority = self.app.settings.publisher.categories.get(given["category"], "")
            stored = await run_in_threadpool(
                compose.upload_image, self.app, who.actor, data, upload.filename, priority
            )
        except Refused as e:
            return await self._compose_form(request, who, given, None, message(e), 403)
        except UsageError as e:
            return await self._compose_form(request, who, given, None, message(e), 400)
        alt = str(form.get("new_alt", "")).strip()
        given["images"].append(
            {"sha256": stored.sha256, "name": stored.name, "alt": alt, "size": stored.size}
        )
        given["new_alt"] = ""
        return await self._compose_form(request, who, given, None, None, 200)

    def _draft(self, given: dict[str, Any]) -> NoticeDraft:
        """The form as a draft; times read as the command line reads them, in the agency's
        zone (:raises UsageError: a time it cannot read)."""
        zone = self.app.settings.agency.time_zone
        now = self.app.clock.now()
        at, expires = given["at"], given["expires"]
        every, rule, until = given["every"], given["repeat"], given["until"]
        if every and rule:
            raise UsageError("choose a repeat or write a rule, not both")
        until_cancelled = until.lower() == "cancelled"
        return NoticeDraft(
            category=given["category"],
            text=given["text"],
            targets=given["targets"],
            link=given["link"] or None,
            publish_at=parse_when(at, zone, now) if at and at.lower() != "now" else None,
            expires_at=parse_when(expires, zone, now) if expires else None,
            allow_thread=given["allow_thread"],
            variants={k: v for k, v in given["variants"].items() if v.strip()},
            languages=self._languages(given),
            recurrence=parse_every(every).text() if every else (rule or None),
            repeat_until=parse_until(until, zone, now) if until and not until_cancelled else None,
            until_cancelled=until_cancelled,
            follow_up=given["follow_up"] or None,
            follow_up_partial=bool(given.get("follow_up_partial")),
        )

    def _languages(self, given: dict[str, Any]) -> list[LanguageVariant]:
        """The form's other languages with a text, as ``notice add --text-in`` gives them:
        each one's wording per account and alt text per image (none typed: the primary's)."""
        found = []
        for lang in self.app.settings.agency.languages[1:]:
            typed = given["languages"].get(lang, {})
            if not str(typed.get("text", "")).strip():
                continue
            alts = [str(i["alts_in"].get(lang, "")) for i in given["images"]]
            found.append(
                LanguageVariant(
                    lang,
                    typed["text"],
                    {k: v for k, v in typed.get("wording", {}).items() if v.strip()},
                    alts if any(a.strip() for a in alts) else [],
                    str(typed.get("follow_up", "")).strip() or None,
                )
            )
        return found


def compose_given(form: FormData) -> dict[str, Any]:
    """What the compose form says, as typed (to show it back); an image whose "remove" box
    is ticked is left out."""
    shas, names = form.getlist("image_sha256"), form.getlist("image_name")
    sizes = form.getlist("image_size")
    images = [
        {
            "sha256": str(sha),
            "name": str(names[n]) if n < len(names) else "image",
            "size": str(sizes[n]) if n < len(sizes) else "",
            "alt": str(form.get(f"alt-{n + 1}", "")),
            "alts_in": {
                str(k).split(":")[1]: str(v)
                for k, v in form.multi_items()
                if str(k).startswith("alt-in:") and str(k).endswith(f":{n + 1}")
            },
        }
        for n, sha in enumerate(shas)
        if not form.get(f"remove-{n + 1}")
    ]
    return {
        "template": str(form.get("template", "")),
        "category": str(form.get("category", "")),
        "targets": [str(t) for t in form.getlist("target")],
        "text": str(form.get("text", "")),
        "link": str(form.get("link", "")).strip(),
        "at": str(form.get("at", "")).strip(),
        "expires": str(form.get("expires", "")).strip(),
        "allow_thread": bool(form.get("allow_thread")),
        "values": {
            str(k).removeprefix("var-"): str(v)
            for k, v in form.multi_items()
            if str(k).startswith("var-")
        },
        "variants": {
            str(k).removeprefix("text-for-"): str(v)
            for k, v in form.multi_items()
            if str(k).startswith("text-for-") and isinstance(v, str)
        },
        "languages": typed_languages(form),
        "every": str(form.get("every", "")).strip(),
        "repeat": str(form.get("repeat", "")).strip(),
        "until": str(form.get("until", "")).strip(),
        "follow_up": str(form.get("follow_up", "")).strip(),
        "follow_up_partial": bool(form.get("follow_up_partial")),
        "images": images,
        "new_alt": str(form.get("new_alt", "")),
    }


def typed_languages(form: FormData) -> dict[str, dict[str, Any]]:
    """The compose form's other languages as typed: ``text-in:LANG``,
    ``text-in:LANG:for:ACCOUNT`` and ``follow-up-in:LANG`` (the colon is in no tag or
    account name), by tag."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in form.multi_items():
        parts = str(key).split(":")
        if parts[0] == "follow-up-in" and len(parts) == 2 and isinstance(value, str):
            found.setdefault(parts[1], {"text": "", "wording": {}})["follow_up"] = value
            continue
        if parts[0] != "text-in" or len(parts) not in (2, 4) or not isinstance(value, str):
            continue
        typed = found.setdefault(parts[1], {"text": "", "wording": {}})
        if len(parts) == 2:
            typed["text"] = value
        elif parts[2] == "for":
            typed["wording"][parts[3]] = value
    return found


def image_triples(given: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(i["sha256"], i["name"], i["alt"]) for i in given["images"]]


@dataclass(frozen=True)
class Outcome:
    """What an action after publishing did, for the notice's page: a headline, the accounts
    it queued a reply or deletion for, the posts it stopped before they went out, those in
    flight it could not reach, and other posts already past stopping (account → state)."""

    headline: str
    queued: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    too_late: dict[str, str] = field(default_factory=dict)


def reply_languages(form: FormData, action: str) -> dict[str, str]:
    """A reply form's text in each other language (fields ``text-LANG``) and its choice to
    post only in the languages given, as ``given`` keys (``update_text_es``,
    ``update_partial``)."""
    found = {
        f"{action}_text_{key[len('text-') :]}": str(value)
        for key, value in form.items()
        if key.startswith("text-")
    }
    return {**found, f"{action}_partial": "1" if form.get("partial") else ""}


def given_texts(given: Mapping[str, str], action: str) -> dict[str, str]:
    """The texts of :func:`reply_languages` by language; a field left empty gives none."""
    prefix = f"{action}_text_"
    return {k[len(prefix) :]: v for k, v in given.items() if k.startswith(prefix) and v.strip()}


def amended(headline: str, amendment: Amendment) -> Outcome:
    return Outcome(
        headline,
        queued=amendment.queued_labels(),
        left=list(amendment.left),
        cancelled=list(amendment.cancelled),
        in_flight=list(amendment.in_flight),
    )


def preview(target: TargetText, link: str | None) -> list[str]:
    """What ``target`` will post: its thread's parts, or its one text as the platform gets it
    (the link added where the platform carries it in the text)."""
    if target.parts:
        return [as_sent(target.platform, target.parts[0], link), *target.parts[1:]]
    return [as_sent(target.platform, target.text, link)]


def board_row_json(r: board.BoardRow) -> dict[str, Any]:
    n = r.row.notice
    return {
        "id": n.id,
        "state": n.state,
        "category": n.category,
        "priority": n.priority,
        "title": n.title,
        "text": n.text,
        "author": n.author,
        "created_at": iso(n.created_at),
        "publish_at": iso(n.publish_at),
        "expires_at": iso(n.expires_at),
        "next_due": iso(r.row.next_due),
        "deliveries": [
            {"delivery": d.label, "state": d.state, "url": d.url, "problem": d.problem}
            for d in r.deliveries
        ],
    }


def review_json(review: Review, link: str | None) -> dict[str, Any]:
    return review.as_json() | {
        "previews": {t.account: preview(t, link) for t in review.targets},
    }


def view_json(v: NoticeView) -> dict[str, Any]:
    n = v.notice
    return {
        "id": n.id,
        "state": n.state,
        "category": n.category,
        "priority": n.priority,
        "title": n.title,
        "text": n.text,
        "lang": n.lang,
        "languages": [lv.as_json() for lv in v.languages],
        "link": n.link,
        "author": n.author,
        "created_at": iso(n.created_at),
        "publish_at": iso(n.publish_at),
        "expires_at": iso(n.expires_at),
        "revision": n.revision,
        "sent_back": n.sent_back,
        "approvals_needed": n.approvals_needed,
        "approved_by": n.approved_by,
        "closed_reason": n.closed_reason,
        "deliveries": [
            {
                "delivery": delivery_label(d, n.lang),
                "state": d.state,
                "url": d.remote_url,
                "published_at": iso(d.published_at),
                "due_at": iso(d.due_at),
                "error": d.last_error,
            }
            for d in v.deliveries
        ],
        "approvals": [
            {
                "approver": a.approver,
                "at": iso(a.at),
                "via_template": a.via_template,
                "overrides": a.overrides,
                "reason": a.reason,
            }
            for a in v.approvals
        ],
        "review": review_json(v.review, n.link),
        "follow_ups": [follow_up_json(f) for f in v.follow_ups],
    }


def follow_up_json(f: FollowUp) -> dict[str, Any]:
    """One language's follow-up as the notice's JSON twin gives it."""
    return {
        "lang": f.lang,
        "text": f.text,
        "at": iso(f.at),
        "queued_at": iso(f.queued_at),
        "posts": [
            {
                "account": p.account,
                "state": p.state,
                "due_at": iso(p.due_at),
                "published_at": iso(p.published_at),
                "url": p.url,
                "error": p.error,
            }
            for p in f.posts
        ],
    }
