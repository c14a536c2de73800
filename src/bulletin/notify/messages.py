"""The messages themselves: plain text and a simple HTML alternative, built from plain facts.
They carry the notice's text, category, priority and author, never a secret."""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

PREFIX = "[Bulletin] "


@dataclass(frozen=True)
class NoticeFacts:
    """What a message says about a notice."""

    id: int
    category: str
    priority: str
    title: str
    text: str
    author: str
    state: str


def notice_lines(notice: NoticeFacts) -> list[str]:
    """The notice described in lines."""
    lines = [
        f"Notice #{notice.id}" + (f": {notice.title}" if notice.title else ""),
        f"Category: {notice.category}",
        f"Priority: {notice.priority}",
        f"Drafted by: {notice.author}",
        f"State: {notice.state}",
        "",
        notice.text,
    ]
    return lines


def build(sender: str, to: str, subject: str, lines: list[str], link: str | None) -> EmailMessage:
    """One message to ``to``: ``lines`` as paragraphs, ``link`` (when given) last."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = PREFIX + subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    text = list(lines)
    if link:
        text += ["", "Open the approval page (sign-in required; the link works once):", link]
    message.set_content("\n".join(text) + "\n")
    body = "".join(f"<p>{html.escape(line)}</p>\n" if line else "" for line in lines)
    if link:
        body += (
            '<p><a href="' + html.escape(link, quote=True) + '">Open the approval page</a>'
            " (sign-in required; the link works once).</p>\n"
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>\n{body}</body></html>\n"
    )
    message.add_alternative(page, subtype="html")
    return message
