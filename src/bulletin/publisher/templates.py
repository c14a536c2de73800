"""Pre-approved templates: an approver approves the wording in advance, a dispatcher fills in
typed variables and the notice goes out at once, covered by that approval.

A template is stored by name and version. Changing it adds a version with no approval, so an
approval never covers wording the approver did not see. Placeholders are ``{name}``; every
placeholder is declared with a type (``road:str``) and every declared variable is used.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bulletin import audit
from bulletin.archiver.store.base import WormStore
from bulletin.clock import Clock
from bulletin.config.settings import Settings
from bulletin.db import session_scope
from bulletin.errors import NotFound, Refused, UsageError
from bulletin.identity import require_role
from bulletin.models import Approval, Notice, Template
from bulletin.publisher import announce, policy
from bulletin.publisher.approval import make_due, notice_images
from bulletin.publisher.languages import LanguageVariant, normalise
from bulletin.publisher.notices import (
    NoticeDraft,
    StoredHook,
    pin_draft_images,
    plan_targets,
    resolve_schedule,
    store_draft,
    validate_draft,
)
from bulletin.publisher.texts import TargetText, check_text

DEFAULT = "default"
# A template's other languages live in ``bodies`` too: ``@es`` is the Spanish text and
# ``@es/x`` its wording for X (no account or platform name starts with "@").
LANG_PREFIX = "@"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_VAR = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_VALUE = 200


def _as_str(value: str) -> str:
    if "\n" in value or len(value) > MAX_VALUE:
        raise ValueError(f"one line of at most {MAX_VALUE} characters")
    return value


def _as_int(value: str) -> str:
    if not re.fullmatch(r"\d{1,6}", value):
        raise ValueError("a whole number, e.g. 34")
    return str(int(value))


_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)?$", re.IGNORECASE)


def _as_time(value: str) -> str:
    lowered = value.lower()
    if lowered in ("noon", "midnight"):
        return lowered
    match = _TIME.match(lowered)
    if not match:
        raise ValueError("a time of day, e.g. 18:30 or 6:30 pm")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    meridiem = (match.group(3) or "").replace(".", "")
    if meridiem:
        if not 1 <= hour <= 12:
            raise ValueError("a time of day, e.g. 18:30 or 6:30 pm")
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ValueError("a time of day, e.g. 18:30 or 6:30 pm")
    shown = datetime(2000, 1, 1, hour, minute).strftime("%I:%M %p").lstrip("0")
    return shown.replace(":00 ", " ")


def _as_date(value: str) -> str:
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ValueError("a date, e.g. 2026-11-26") from None
    return parsed.strftime("%a %b ") + str(parsed.day)


def _as_phone(value: str) -> str:
    digits = re.sub(r"[\s().-]", "", value)
    if re.fullmatch(r"[2-9]11", digits):
        return digits
    if re.fullmatch(r"1?[2-9]\d{9}", digits):
        digits = digits[-10:]
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    raise ValueError("a phone number, e.g. 781-862-1212 or 911")


VARIABLE_TYPES: dict[str, Callable[[str], str]] = {
    "str": _as_str,
    "int": _as_int,
    "time": _as_time,
    "date": _as_date,
    "phone": _as_phone,
}


@dataclass(frozen=True)
class TemplateNotice:
    """A notice drafted from a template, and whether the template's approval covered it."""

    notice: Notice
    template: Template
    covered: bool
    findings: list[policy.Finding]
    targets: list[TargetText]


def parse_variables(specs: Sequence[str]) -> dict[str, str]:
    """``["road:str", "age:int"]`` as ``{"road": "str", "age": "int"}``.

    :raises UsageError: a bad name, an unknown type, a variable named twice.
    """
    declared: dict[str, str] = {}
    for spec in specs:
        name, _, kind = spec.partition(":")
        name, kind = name.strip(), (kind.strip() or "str")
        if name in declared:
            raise UsageError(f"variable {name} is declared twice")
        check_variable(name, kind, spec)
        declared[name] = kind
    return declared


def check_variable(name: str, kind: str, spec: str | None = None) -> None:
    """A declared variable's name and type (``spec``: how it was written, for the message).

    :raises UsageError: a bad name or an unknown type.
    """
    said = spec if spec is not None else f"{name}:{kind}"
    if not _VAR.match(name):
        raise UsageError(f"variable {said!r}: a variable name is lower-case letters, digits, _")
    if kind not in VARIABLE_TYPES:
        raise UsageError(
            f"variable {said!r}: unknown type {kind!r} (types: {', '.join(VARIABLE_TYPES)})"
        )


def placeholders(body: str) -> list[str]:
    """The ``{name}`` fields of ``body``.

    :raises UsageError: a field with a format spec, an index or an attribute, or bad braces.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as e:
        raise UsageError(f"template text has bad braces: {e}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not _VAR.match(field) or spec or conversion:
            raise UsageError(f"template placeholder {{{field}}} must be a plain {{name}}")
        names.append(field)
    return names


def content_hash(
    name: str, category: str, bodies: Mapping[str, str], variables: Mapping[str, str]
) -> str:
    canonical = json.dumps(
        {"name": name, "category": category, "bodies": bodies, "variables": variables},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def add_template(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    name: str,
    category: str,
    text: str,
    variables: Mapping[str, str],
    author: str,
    variants: Mapping[str, str] | None = None,
    languages: Mapping[str, str] | None = None,
) -> Template:
    """Store a template, or a new version of it (whose approval is then void). Its text is in
    the agency's first language; ``languages`` gives its text in others (tag → text; a key
    ``es/x`` is the Spanish wording for X), with the same typed variables: each language's
    text uses every variable the main text uses.

    :raises UsageError: bad name, unknown category, a variable of a bad name or an unknown
        type, undeclared or unused variable, a
        language that is not the agency's or leaves out a variable, unchanged.
    """
    if not _NAME.match(name):
        raise UsageError(f"template name {name!r}: lower-case letters, digits, - and _")
    for variable, kind in variables.items():  # the API's and the console's come as a mapping
        check_variable(variable, kind)
    if category not in settings.publisher.categories:
        raise UsageError(f"unknown category {category!r}")
    bodies = {DEFAULT: text.strip(), **{k: v.strip() for k, v in (variants or {}).items()}}
    if not bodies[DEFAULT]:
        raise UsageError("template text is empty")
    main = set(placeholders(bodies[DEFAULT]))
    for key, body in (languages or {}).items():
        tag, _, wording_for = key.partition("/")
        lang = normalise(settings, tag)
        if lang == settings.agency.languages[0]:
            raise UsageError(f"the template's text is already in {lang}: give other languages")
        if not body.strip():
            raise UsageError(f"the {lang} template text is empty")
        left_out = sorted(main - set(placeholders(body)))
        if left_out and not wording_for:
            raise UsageError(
                f"the {lang} template text leaves out {{{left_out[0]}}}: every language uses "
                "the same variables"
            )
        bodies[LANG_PREFIX + lang + (f"/{wording_for}" if wording_for else "")] = body.strip()
    for key, body in bodies.items():
        check_text("template text" if key == DEFAULT else f"template text for {key}", body)
    used: set[str] = set()
    for key, body in bodies.items():
        fields = placeholders(body)
        undeclared = [f for f in fields if f not in variables]
        if undeclared:
            where = "" if key == DEFAULT else f" (text for {key})"
            raise UsageError(
                f"placeholder {{{undeclared[0]}}}{where} is not declared: declare "
                f"{undeclared[0]} with its type",
                remedy="declare-var",
            )
        used.update(fields)
    unused = [v for v in variables if v not in used]
    if unused:
        raise UsageError(f"variable {unused[0]} is declared but no text uses {{{unused[0]}}}")
    digest = content_hash(name, category, bodies, variables)
    now = clock.now()
    with session_scope(engine) as session:
        latest = _latest(session, name)
        if latest is not None and latest.content_sha256 == digest:
            raise UsageError(f"template {name} is unchanged (version {latest.version})")
        template = Template(
            name=name,
            version=(latest.version + 1) if latest else 1,
            category=category,
            bodies=bodies,
            variables=dict(variables),
            content_sha256=digest,
            created_by=author,
            created_at=now,
        )
        session.add(template)
        session.flush()
        audit.record_event(
            session,
            at=now,
            actor=author,
            action="template-added",
            object_type="template",
            object_id=f"{name} v{template.version}",
            sha256=digest,
            voids=f"v{latest.version} approved by {latest.approved_by}"
            if latest and latest.approved_by
            else None,
        )
    return template


def approve_template(
    engine: Engine, settings: Settings, clock: Clock, name: str, approver: str
) -> Template:
    """Approve the newest version of ``name``; notices drafted from it need no other approval.

    :raises Refused: already approved, self-approval with users, missing role, or the wording
        itself breaks a blocking content-policy rule.
    """
    require_role(settings, approver, "approver", engine)
    now = clock.now()
    with session_scope(engine) as session:
        template = _latest(session, name, for_update=True)
        if template is None:
            raise NotFound(f"no template {name!r}")
        if template.approved_by:
            raise Refused(
                f"template {name} v{template.version} is already approved by {template.approved_by}"
            )
        if approver == template.created_by:
            raise Refused(f"{approver} wrote template {name} and may not approve it")
        bodies = template.bodies
        targets = [
            TargetText(account=key, platform=key, text=body, length=0, limit=1)
            for key, body in bodies.items()
        ]
        subject = policy.Subject(template.category, targets, link=None)
        findings = [
            f
            for f in policy.check(settings, subject)
            if f.rule not in ("over-length", "link-required")  # judged when it is used
        ]
        blocked = policy.blocking(findings)
        if blocked:
            raise Refused(
                f"template {name} breaks the content policy: "
                + "; ".join(f.line() for f in blocked)
            )
        template.approved_by = approver
        template.approved_at = now
        session.add(template)
        audit.record_event(
            session,
            at=now,
            actor=approver,
            action="template-approved",
            object_type="template",
            object_id=f"{name} v{template.version}",
            sha256=template.content_sha256,
        )
    return template


def list_templates(engine: Engine) -> list[Template]:
    """The newest version of every template."""
    with Session(engine) as session:
        rows = session.exec(select(Template).order_by(col(Template.name), col(Template.version)))
        newest: dict[str, Template] = {t.name: t for t in rows}
    return list(newest.values())


def get_template(engine: Engine, name: str) -> Template:
    with Session(engine) as session:
        template = _latest(session, name)
    if template is None:
        raise NotFound(f"no template {name!r}")
    return template


def approved_template(engine: Engine, name: str) -> Template:
    """The newest version of template ``name``, which must be approved.

    ``within`` runs in the notice's transaction, as for
    :func:`~bulletin.publisher.notices.create_notice`.

    :raises NotFound: no such template.
    :raises Refused: the template was never approved, or was changed since its approval.
    """
    template = get_template(engine, name)
    if template.approved_by:
        return template
    with Session(engine) as session:
        approved = session.exec(
            select(Template)
            .where(Template.name == name, col(Template.approved_by).is_not(None))
            .order_by(col(Template.version).desc())
        ).first()
    if approved is not None:
        raise Refused(
            f"template {name} was changed: version {template.version} is not approved "
            f"(the approval of version {approved.version} does not cover the new wording)"
        )
    raise Refused(f"template {name} is not approved", remedy="approve-template")


def render(template: Template, values: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The default text and each per-platform text with ``values`` checked and filled in.

    :raises UsageError: unknown variable, missing variable, or a value of the wrong type.
    """
    texts = {
        key: body.format_map(_filled(template, values))
        for key, body in template.bodies.items()
        if not key.startswith(LANG_PREFIX)
    }
    default = texts.pop(DEFAULT)
    return default, texts


def render_languages(template: Template, values: Mapping[str, str]) -> list[LanguageVariant]:
    """The template's other languages filled in with the same ``values``: dates and times
    written as each language writes them (Babel's formats for its locale).

    :raises UsageError: as :func:`render`.
    """
    by_lang: dict[str, dict[str, str]] = {}
    for key, body in template.bodies.items():
        if key.startswith(LANG_PREFIX):
            tag, _, wording_for = key[len(LANG_PREFIX) :].partition("/")
            by_lang.setdefault(tag, {})[wording_for or DEFAULT] = body
    found = []
    for lang, bodies in by_lang.items():
        filled = _filled(template, values, lang)
        texts = {key: body.format_map(filled) for key, body in bodies.items()}
        text = texts.pop(DEFAULT, "")
        found.append(LanguageVariant(lang, text, texts))
    return found


def _filled(template: Template, values: Mapping[str, str], lang: str = "") -> dict[str, str]:
    """``values`` checked against the template's variables and written in ``lang`` ("": the
    template's main language)."""
    declared = template.variables
    unknown = [k for k in values if k not in declared]
    if unknown:
        raise UsageError(
            f"unknown variable {unknown[0]!r} for template {template.name} "
            f"(its variables: {', '.join(declared) or 'none'})"
        )
    missing = [k for k in declared if k not in values]
    if missing:
        raise UsageError(
            f"template {template.name} needs variable {missing[0]} ({declared[missing[0]]})",
            remedy="var",
        )
    filled: dict[str, str] = {}
    for key, kind in declared.items():
        raw = values[key].strip()
        if not raw:
            raise UsageError(f"variable {key} is empty")
        check_text(f"variable {key}", values[key])
        try:
            filled[key] = VARIABLE_TYPES[kind](raw)
            if lang and kind in ("date", "time"):
                filled[key] = localised(kind, raw, lang)
        except ValueError as e:
            raise UsageError(f"variable {key}: {raw!r} is not {e}") from None
    return filled


def localised(kind: str, raw: str, lang: str) -> str:
    """A date or time of day (as the ``date`` and ``time`` types take them) written the way
    ``lang`` writes it, from Babel's locale data (``jue, 26 nov``; ``18:30``)."""
    from babel import Locale, UnknownLocaleError
    from babel.dates import format_skeleton, format_time

    try:
        locale = Locale.parse(lang, sep="-")
    except (UnknownLocaleError, ValueError):
        return VARIABLE_TYPES[kind](raw)
    if kind == "date":
        return format_skeleton("MMMEd", date.fromisoformat(raw), locale=locale)
    written = VARIABLE_TYPES["time"](raw)  # "noon", "6 PM", "6:30 PM"
    if written in ("noon", "midnight"):
        shown = time(12) if written == "noon" else time(0)
    else:
        shown = datetime.strptime(written, "%I:%M %p" if ":" in written else "%I %p").time()
    return format_time(shown, format="short", locale=locale)


def notice_from_template(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    name: str,
    values: Mapping[str, str],
    draft: NoticeDraft,
    author: str,
    store: WormStore | None = None,
    within: StoredHook | None = None,
) -> TemplateNotice:
    """Draft a notice from the newest version of template ``name`` (its images pinned in
    ``store``, see :func:`~bulletin.publisher.notices.create_notice`).

    When that version is approved and the filled-in notice breaks no blocking content-policy
    rule, the template's approval covers it: the notice is approved at once (an approval row
    names the template's approver) and its deliveries are due. Otherwise it stays a draft for
    an approver, and ``findings`` says why.

    ``draft`` gives targets, times, link and thread permission; its text and category come
    from the template.

    :raises NotFound: no such template.
    :raises Refused: the template was never approved, or was changed since its approval.
    :raises UsageError: a variable is unknown, missing or of the wrong type.
    """
    require_role(settings, author, "dispatcher", engine)
    template = approved_template(engine, name)
    assert template.approved_by is not None
    text, variants = render(template, values)
    targets = set(draft.targets)
    platforms = {settings.accounts[t].platform for t in targets if t in settings.accounts}
    variants = {k: v for k, v in variants.items() if k in targets or k in platforms}
    languages = [
        replace(v, wording={k: w for k, w in v.wording.items() if k in targets or k in platforms})
        for v in render_languages(template, values)
    ]
    now = clock.now()
    filled = resolve_schedule(
        replace(
            draft,
            category=template.category,
            text=text,
            variants={**variants, **draft.variants},
            lang=None,
            languages=[*languages, *draft.languages],
        ),
        settings,
        now,
    )
    priority = validate_draft(filled, settings, now)
    plans = plan_targets(filled, settings)
    media = pin_draft_images(store, settings, filled, priority, now)
    with session_scope(engine) as session:
        notice = store_draft(
            session, settings, now, filled, author, priority, plans, template, media=media
        )
        assert notice.id is not None
        subject = policy.Subject(notice.category, plans, notice.link, notice_images(notice))
        findings = policy.check(settings, subject)
        covered = not policy.blocking(findings)
        if covered:
            session.add(
                Approval(
                    notice_id=notice.id,
                    approver=template.approved_by,
                    at=now,
                    via_template_id=template.id,
                )
            )
            audit.record_event(
                session,
                at=now,
                actor=author,
                action="approved",
                object_type="notice",
                object_id=notice.id,
                reason=f"covered by template {template.name} v{template.version}, approved by "
                f"{template.approved_by}",
                via_template=f"{template.name} v{template.version}",
                template_approved_by=template.approved_by,
                template_approved_at=template.approved_at.isoformat()
                if template.approved_at
                else None,
                template_sha256=template.content_sha256,
            )
            make_due(session, notice, template.approved_by, now, settings)
        else:
            audit.record_event(
                session,
                at=now,
                actor=author,
                action="template-not-covering",
                object_type="notice",
                object_id=notice.id,
                via_template=f"{template.name} v{template.version}",
                findings=[f.line() for f in policy.blocking(findings)],
            )
        announce.drafted(session, notice, now)
        if within is not None:
            within(session, notice)
    return TemplateNotice(notice, template, covered, findings, plans)


def _latest(session: Session, name: str, for_update: bool = False) -> Template | None:
    query = select(Template).where(Template.name == name).order_by(col(Template.version).desc())
    if for_update:
        query = query.with_for_update()
    return session.exec(query).first()
