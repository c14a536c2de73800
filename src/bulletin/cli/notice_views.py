"""How the notice commands show a notice to people and to scripts: review lines (cost,
thread parts, policy findings), one list row, one notice in full."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bulletin.app.follow_ups import FollowUp
from bulletin.app.notice_queries import NoticeRow, NoticeView
from bulletin.app.notices import Drafted
from bulletin.publisher.approval import Review
from bulletin.publisher.failures import delivery_label
from bulletin.states import DeliveryKind
from bulletin.timeparse import local_text

if TYPE_CHECKING:
    from bulletin.publisher.languages import LanguageVariant

NO_DAEMON = " (no daemon is listening: start `bulletin daemon`)"


def drafted_output(made: Drafted, tz: str) -> tuple[dict[str, Any], list[str]]:
    """What ``notice add`` prints: the JSON object and the lines for people."""
    created, template, covered_by, woke = made.notice, made.template, made.covered_by, made.woke
    payload = {
        "id": created.id,
        "state": created.state,
        "priority": created.priority,
        "approvals_needed": created.approvals_needed,
        "publish_at": created.publish_at,
        "recurrence": created.recurrence,
        "repeat_until": created.repeat_until,
        **made.review.as_json(),
    }
    if template is not None:
        payload |= {"template": template, "covered_by": covered_by, "daemon_notified": woke}
    if covered_by:
        head = (
            f"notice {created.id} approved through template {template} (approved by "
            f"{covered_by}); publishing now" + ("" if woke else NO_DAEMON)
        )
    else:
        needs = created.approvals_needed
        head = (
            f"notice {created.id} drafted ({created.priority}); it needs {needs} "
            f"approval{'s' if needs > 1 else ''}: `bulletin notice approve {created.id}`"
        )
        if template is not None:
            head += " (the template's approval does not cover it: see policy below)"
    schedule_lines = []
    if created.recurrence:
        end = local_text(created.repeat_until, tz) if created.repeat_until else "cancelled"
        schedule_lines.append(
            f"  repeats  {created.recurrence}, first {local_text(created.publish_at, tz)}, "
            f"until {end}"
        )
    return payload, [head, *schedule_lines, *review_lines(made.review)]


def review_lines(review: Review) -> list[str]:
    """Cost per target, thread parts and policy findings, for people."""
    lines = [
        f"  cost     {t.label}: ${t.cost:.3f}"
        + (f" ({len(t.parts)} posts in a thread)" if t.parts else "")
        + f"  [{t.length}/{t.limit}]"
        for t in review.targets
    ]
    if review.follow_up_cost:
        lines.append(f"  cost     follow-ups at expiry: ${review.follow_up_cost:.3f}")
    lines.append(f"  total    ${review.cost:.3f} (estimated)")
    for finding in review.findings:
        state = " (overridden)" if finding.rule in review.overridden else ""
        lines.append(f"  policy   {finding.line()}{state}")
    return lines


def row_json(row: NoticeRow) -> dict[str, Any]:
    """A list row as JSON: the notice's columns, its deliveries, problems and next time."""
    return {
        **row.notice.model_dump(),
        "deliveries": row.deliveries,
        "problems": row.problems,
        "next_due": row.next_due,
    }


def list_lines(rows: list[dict[str, Any]], tz: str) -> list[str]:
    """``notice list`` for people: one line per notice (rows of :func:`row_json`), then one
    per problem."""
    lines: list[str] = []
    for r in rows:
        when = local_text(r["next_due"], tz) if r["next_due"] else "-"
        lines.append(
            f"{r['id']:>5}  {r['state']:<20} {r['category']:<18} next {when:<22} "
            + " ".join(f"{a}:{s}" for a, s in r["deliveries"].items())
            + (f"  [repeats {r['recurrence']}]" if r["recurrence"] else "")
        )
        lines += [f"         {a}: {why}" for a, why in r["problems"].items()]
    return lines or ["no notices"]


def view_json(view: NoticeView) -> dict[str, Any]:
    """One notice in full as JSON."""
    attempts = view.attempts
    return {
        **view.notice.model_dump(),
        "media": [i.as_json() for i in view.images],
        "deliveries": [
            {k: v for k, v in d.model_dump().items() if k != "raw_response"}
            | {"attempt_log": [a.model_dump() for a in attempts.get(d.id or 0, [])]}
            for d in view.deliveries
        ],
        "approvals": [asdict(a) for a in view.approvals],
        "languages": [v.as_json() for v in view.languages],
        "follow_ups": [follow_up_json(f) for f in view.follow_ups],
        **view.review.as_json(),
    }


def follow_up_json(f: FollowUp) -> dict[str, Any]:
    """One language's follow-up: whether it is set (``text`` None: that language's posts
    get none), when it goes and was queued, and how each account's follow-up stands."""
    return {
        "lang": f.lang,
        "set": f.text is not None,
        "text": f.text,
        "at": f.at,
        "queued_at": f.queued_at,
        "posts": [asdict(p) for p in f.posts],
    }


def follow_up_lines(follow_ups: list[FollowUp], tz: str) -> list[str]:
    """Each language's follow-up (the primary first) and how it stands per account, when
    the notice has a follow-up; times in the agency's zone ``tz``."""
    if not follow_ups:
        return []
    first = follow_ups[0]
    when = (
        f"queued {local_text(first.queued_at, tz)}"
        if first.queued_at
        else f"at expiry {local_text(first.at, tz)}"
    )
    lines = [f"  follow-ups ({when})"]
    for f in follow_ups:
        if f.text is None:
            lines.append(f"    [{f.lang}] none: the {f.lang} posts get no follow-up")
            continue
        lines.append(f"    [{f.lang}] set" + ("" if f.posts else ": to no account"))
        for p in f.posts:
            lines.append(
                f"      -> {p.account:<16} {p.state:<10}"
                + (f" {local_text(p.published_at, tz)}" if p.published_at else "")
                + (f" due {local_text(p.due_at, tz)}" if p.due_at and not p.published_at else "")
                + (f"  {p.url}" if p.url else "")
                + (f"  ({p.error})" if p.error else "")
            )
    return lines


def language_lines(languages: list[LanguageVariant]) -> list[str]:
    """Each language variant (the primary first), when a notice has more than one."""
    if len(languages) < 2:
        return []
    lines = [f"  languages {', '.join(v.lang for v in languages)} (primary {languages[0].lang})"]
    for v in languages[1:]:
        lines.append(f"  text [{v.lang}]  {v.text}")
        lines.extend(f"  text [{v.lang}] for {key}: {text}" for key, text in v.wording.items())
        if languages[0].follow_up:
            lines.append(f"  follow-up at expiry [{v.lang}]: {v.follow_up or '(none)'}")
        lines.extend(f"  alt  [{v.lang}] {k}: {alt}" for k, alt in enumerate(v.alts, start=1))
    return lines


def view_lines(view: NoticeView, tz: str) -> list[str]:
    """One notice in full for people, times in the agency's zone ``tz``."""
    n, approvals = view.notice, view.approvals
    lines = [
        f"notice {n.id}  {n.state}  {n.category} ({n.priority})",
        f"  author   {n.author}, {local_text(n.created_at, tz)}",
        f"  approved {n.approved_by or '-'}, {local_text(n.approved_at, tz)}"
        f"   ({len(approvals)} of {n.approvals_needed} approvals)",
        *[
            f"           {a.approver}"
            + (f" through template {a.via_template}" if a.via_template else "")
            + (f", overriding {', '.join(a.overrides)}: {a.reason}" if a.overrides else "")
            for a in approvals
        ],
        f"  publish  {local_text(n.publish_at, tz) if n.publish_at else 'on approval'}"
        f"   expires {local_text(n.expires_at, tz)}",
        *(
            [
                f"  repeats  {n.recurrence} until "
                + (local_text(n.repeat_until, tz) if n.repeat_until else "cancelled")
                + f"; {n.occurrences} made, next "
                + (local_text(n.next_occurrence_at, tz) if n.next_occurrence_at else "-")
            ]
            if n.recurrence
            else []
        ),
        *([f"  follow-up at expiry: {n.follow_up}"] if n.follow_up else []),
        f"  text     {n.text}",
        *[
            f"  image {k}  {i.name}  {i.mime_type or '?'}, {i.size:,} bytes, "
            + (f"sha256 {i.sha256}" if i.sha256 else "not archived (drafted before pinning)")
            + f"\n           alt: {i.alt or '(none)'}"
            for k, i in enumerate(view.images, start=1)
        ],
        *[f"  text for {d.account}: {d.text}" for d in view.variants],
        *language_lines(view.languages),
        *follow_up_lines(view.follow_ups, tz),
        *review_lines(view.review),
    ]
    for d in view.deliveries:
        lines.append(
            f"  -> {delivery_label(d, n.lang):<16} {d.state:<10} due {local_text(d.due_at, tz)}"
            f"  attempts {d.attempts}"
            + (f"  {d.remote_url or d.remote_id}" if d.remote_id else "")
            + (f"  ({d.last_error})" if d.last_error else "")
        )
        if d.kind != DeliveryKind.POST and d.text:
            lines.append(f"       text: {d.text}")
        for a in view.attempts.get(d.id or 0, []):
            lines.append(
                f"       try {local_text(a.started_at, tz)} -> "
                f"{local_text(a.finished_at, tz) if a.finished_at else '...'}"
                f"  {a.outcome or 'in progress'}"
                + (f": {a.error}" if a.error and a.outcome != "published" else "")
            )
    return lines
