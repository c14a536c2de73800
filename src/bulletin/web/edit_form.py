"""The console's form for editing a draft: the primary text, its follow-up at expiry (added
when typed into the empty field of a notice that has an expiry but no follow-up, removed in
every language with a box) and, for each other language of the notice, its text, wording per
account, alt text per image and follow-up at expiry, and a box to drop it; for each of the
agency's languages the notice does not have, the fields to add it (left empty, it is not
added).

What it shows is plain data (:class:`EditForm`), from the notice or as typed; what it sends
is the input of :func:`bulletin.app.notices.edit` (the edit the API and ``notice edit
--languages-file`` make), and an error of that edit is shown next to the field it names
(:func:`field_id`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import FormData

from bulletin.app.compose import MAX_IMAGES
from bulletin.app.notice_queries import NoticeView
from bulletin.errors import BulletinError, FieldPath
from bulletin.publisher.languages import LanguageVariant
from bulletin.states import DeliveryKind


@dataclass
class TypedLanguage:
    """One other language as the form shows it: text, wording by account (or platform),
    alt text per image in image order ("" where none is typed) and follow-up ("": none)."""

    text: str = ""
    wording: dict[str, str] = field(default_factory=dict)
    alts: list[str] = field(default_factory=list)
    follow_up: str = ""


@dataclass
class EditForm:
    """The edit form's fields: the primary text, the other languages by tag as typed (the
    notice's in its order, then those it may add), the notice's other languages (``has``)
    and those ticked to be dropped; the follow-up in the primary language (None: the form
    has no such field, the notice having neither a follow-up nor an expiry), the box that
    removes it and the box that lets a language go without one."""

    text: str
    languages: dict[str, TypedLanguage] = field(default_factory=dict)
    has: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    follow_up: str | None = None
    remove_follow_up: bool = False
    follow_up_partial: bool = False

    def sent(self) -> list[str]:
        """The other languages the edit gives, in order: each the notice has and is not
        dropped, and each it does not have whose text was typed."""
        return [
            lang
            for lang, typed in self.languages.items()
            if lang not in self.dropped and (lang in self.has or typed.text.strip())
        ]


def of_notice(view: NoticeView) -> EditForm:
    """The form filled with the notice as it is."""
    images = len(view.images)
    return EditForm(
        view.notice.text,
        {
            v.lang: TypedLanguage(
                v.text,
                dict(v.wording),
                list(v.alts) or [""] * images,
                v.follow_up or "",
            )
            for v in view.languages[1:]
        },
        [v.lang for v in view.languages[1:]],
        follow_up=view.notice.follow_up or ("" if view.notice.expires_at else None),
    )


def of_form(form: FormData, has: list[str]) -> EditForm:
    """The form as typed for a notice whose other languages are ``has``: ``text``,
    ``follow-up`` (the primary's; not sent: None), the boxes ``remove-follow-up`` and
    ``follow-up-partial``, ``drop`` (a tag, repeated), and per other
    language ``text-in:LANG``,
    ``text-in:LANG:for:KEY``, ``alt-in:LANG:N`` (N from 1: a field missing below the
    highest is "") and ``follow-up-in:LANG`` (the colon is in no tag or account name); a
    language is one of ``has`` (its fields not sent: empty) or one whose ``text-in:LANG``
    was sent."""
    typed: dict[str, TypedLanguage] = {lang: TypedLanguage() for lang in has}
    alts: dict[str, dict[int, str]] = {}
    rest: list[tuple[list[str], str]] = []
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        parts = str(key).split(":")
        if parts[0] == "text-in" and len(parts) == 2:
            typed.setdefault(parts[1], TypedLanguage()).text = value
        else:
            rest.append((parts, value))
    for parts, value in rest:
        lang = typed.get(parts[1]) if len(parts) > 1 else None
        if lang is None:
            continue
        if parts[0] == "text-in" and len(parts) == 4 and parts[2] == "for":
            lang.wording[parts[3]] = value
        elif parts[0] == "alt-in" and len(parts) == 3 and parts[2].isdigit():
            if 1 <= int(parts[2]) <= MAX_IMAGES:  # a notice carries no more
                alts.setdefault(parts[1], {})[int(parts[2])] = value
        elif parts[0] == "follow-up-in" and len(parts) == 2:
            lang.follow_up = value
    for tag, given in alts.items():
        typed[tag].alts = [given.get(n, "") for n in range(1, max(given) + 1)]
    return EditForm(
        str(form.get("text", "")),
        typed,
        list(has),
        [str(v) for v in form.getlist("drop")],
        None if form.get("follow-up") is None else str(form.get("follow-up")),
        remove_follow_up=bool(form.get("remove-follow-up")),
        follow_up_partial=bool(form.get("follow-up-partial")),
    )


def follow_up(given: EditForm, had: bool) -> str | None:
    """The primary's follow-up as the edit takes it, for a notice that ``had`` one or not:
    None (as it is) when the form has no such field, when its box removes it, or when the
    notice has none and the field is left empty (none is added); else the text typed."""
    if given.follow_up is None or given.remove_follow_up:
        return None
    if not had and not given.follow_up.strip():
        return None
    return given.follow_up


def variants(given: EditForm) -> list[LanguageVariant] | None:
    """The other languages of ``given`` as the edit takes them (:meth:`EditForm.sent`; None:
    no other language, neither the notice's nor one sent, so none changes).
    Wording left empty is none; alt texts all left empty are the primary's; a follow-up left
    empty is none in that language, and so is every one when the follow-up is removed."""
    if not given.languages and not given.has:
        return None
    sent = given.sent()
    return [
        LanguageVariant(
            lang,
            typed.text,
            {k: v for k, v in typed.wording.items() if v.strip()},
            list(typed.alts) if any(a.strip() for a in typed.alts) else [],
            None if given.remove_follow_up else typed.follow_up.strip() or None,
        )
        for lang, typed in given.languages.items()
        if lang in sent
    ]


def field_id(error: BulletinError, given: EditForm) -> str | None:
    """The id of the form's field ``error`` is about (its ``field``, as the edit names it
    from its input), or None when it names none the form shows."""
    where: FieldPath = error.field or ()
    if where == ("text",):
        return "text"
    if where == ("follow_up",) and given.follow_up is not None:
        return "follow-up"
    if where == ("remove_follow_up",) and given.follow_up is not None:
        return "remove-follow-up"
    tags = given.sent()
    if len(where) < 3 or where[0] != "languages" or not isinstance(where[1], int):
        return None
    if not 0 <= where[1] < len(tags):
        return None
    lang, what = tags[where[1]], where[2]
    if what == "text":
        return f"text-in-{lang}"
    if what == "follow_up":
        return f"follow-up-in-{lang}"
    if what == "wording" and len(where) == 4:
        return f"text-in-{lang}-for-{where[3]}"
    if what == "alts" and len(where) == 4 and isinstance(where[3], int):
        return f"alt-in-{lang}-{where[3] + 1}"
    return None


def accounts_by_language(view: NoticeView) -> dict[str, list[str]]:
    """The accounts posting each language of the notice (the primary's included), in the
    order of its deliveries."""
    found: dict[str, list[str]] = {}
    for d in view.deliveries:
        if d.kind != DeliveryKind.POST:
            continue
        accounts = found.setdefault(d.lang or view.notice.lang, [])
        if d.account not in accounts:
            accounts.append(d.account)
    return found
