"""What a delivery sends and how it is known again: the outgoing post, its stable key, and
the remote id a reply answers."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bulletin.config.settings import Settings
from bulletin.connectors.base import Media, OutgoingPost
from bulletin.connectors.registry import build_connector, connector_class
from bulletin.errors import BulletinError
from bulletin.models import Delivery, Notice
from bulletin.states import DeliveryKind


def outgoing_post(
    notice: Notice,
    delivery: Delivery,
    part: int | None = None,
    reply_to: str | None = None,
    media: tuple[Media, ...] = (),
) -> OutgoingPost:
    """What to send for ``delivery``: its own text (the variant for its account), or one
    numbered part of its thread (the link goes with the first part only)."""
    text = delivery.text or notice.text
    key = delivery_key(notice, delivery)
    link = notice.link if delivery.kind == DeliveryKind.POST else None
    if part is not None:
        text = (delivery.parts or [])[part]
        if part:
            key = f"{key}-part-{part + 1}"
            link = None
    return OutgoingPost(
        key=key,
        text=text,
        title=notice.title,
        category=notice.category,
        link=link,
        reply_to=reply_to,
        media=media,
        lang=delivery.lang or notice.lang,
    )


def delivery_key(notice: Notice, delivery: Delivery) -> str:
    """Stable across attempts, distinct per occurrence and per reply: ``notice-7.3f9a02bc``,
    ``notice-7.3f9a02bc-occurrence-3``, ``notice-7.3f9a02bc-follow-up``,
    ``notice-7.3f9a02bc-correction-2``, ``notice-7.3f9a02bc-es`` (a language other than the
    primary)... The notice's random token makes a key unique even
    where its number was used before (a notice made before tokens has none: ``notice-7``)."""
    key = f"notice-{notice.id}" + (f".{notice.uid}" if notice.uid else "")
    if delivery.lang and delivery.lang != notice.lang:
        key += f"-{delivery.lang}"
    if delivery.occurrence != 1:
        key += f"-occurrence-{delivery.occurrence}"
    if delivery.kind != DeliveryKind.POST:
        key += f"-{delivery.kind}"
    if delivery.revision:
        key += f"-{delivery.revision}"
    return key


_KEY_NOTICE = re.compile(r"notice-([0-9]+)(?![0-9])")


def notice_of_key(key: str) -> int | None:
    """The notice number in a delivery key, if it is one."""
    found = _KEY_NOTICE.match(key)
    return int(found.group(1)) if found else None


def highest_notice_on_platforms(
    settings: Settings, environ: Mapping[str, str]
) -> tuple[int, list[str]]:
    """The highest notice number in the delivery keys the configured accounts' platforms hold
    (see :meth:`Connector.published_keys`), and a line for each platform that could not be
    read. Ids are continued above it after a restore or a rebuild."""
    highest, problems = 0, []
    for name, account in sorted(settings.accounts.items()):
        try:
            if not connector_class(account.platform).keeps_keys:
                continue
            connector = build_connector(name, settings, environ)
            try:
                keys = connector.published_keys()
            finally:
                connector.close()
            highest = max([highest, *(n for n in map(notice_of_key, keys) if n is not None)])
        except BulletinError as e:
            problems.append(f"account {name}: its delivery keys could not be read: {e}")
    return highest, problems


def reply_target(parent: Delivery | None) -> str | None:
    """The remote id a reply to ``parent`` answers: the last part of a thread, else its post."""
    if parent is None:
        return None
    if parent.thread_ids:
        return parent.thread_ids[-1]
    return parent.remote_id
