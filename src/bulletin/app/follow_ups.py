"""A notice's follow-ups as the console shows them: per language, the text posted at expiry as
a reply to each published post, when it goes, to which accounts and, once queued, how each
one stands (see :func:`bulletin.publisher.schedule.make_follow_ups`, which queues them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bulletin.models import Delivery, Notice
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.schedule import RETRACTING
from bulletin.states import DeliveryKind, DeliveryState

#: the state of a follow-up not queued yet: it waits for the notice's expiry
WAITING = DeliveryState.PENDING
#: the state of an account's follow-up left out when they were queued (no published post)
SKIPPED = "skipped"


@dataclass(frozen=True)
class FollowUpPost:
    """One account's follow-up in one language: ``state`` is its delivery's once queued,
    ``pending`` before (due at expiry), or ``skipped`` (its post was not published when the
    follow-ups were queued); ``url`` is the post's address once published."""

    account: str
    state: str
    due_at: datetime | None
    published_at: datetime | None
    url: str | None
    error: str | None


@dataclass(frozen=True)
class FollowUp:
    """A notice's follow-up in language ``lang``: its text (None: that language's posts get
    none), when it goes (``at``, the notice's expiry), when it was queued (``queued_at``,
    None before) and each account's follow-up."""

    lang: str
    text: str | None
    at: datetime | None
    queued_at: datetime | None
    posts: list[FollowUpPost]


def follow_ups_of(
    notice: Notice, deliveries: Sequence[Delivery], languages: Sequence[LanguageVariant]
) -> list[FollowUp]:
    """Each language's follow-up of ``notice`` (``languages`` the primary first, as
    :func:`~bulletin.publisher.languages.variants_of` gives them), from its ``deliveries``;
    empty when the notice has no follow-up. Before they are queued, each account with a post
    in that language that is neither cancelled nor retracted is listed as pending."""
    if not notice.follow_up:
        return []
    primary = notice.lang

    def lang_of(d: Delivery) -> str:
        return d.lang or primary

    posts = [d for d in deliveries if d.kind == DeliveryKind.POST]
    retracted = {d.parent_id for d in deliveries if d.kind in RETRACTING}
    queued = [d for d in deliveries if d.kind == DeliveryKind.FOLLOW_UP]
    found = []
    for variant in languages:
        mine = [d for d in posts if lang_of(d) == variant.lang]
        lines: list[FollowUpPost] = []
        if variant.follow_up is not None and notice.followed_up_at is None:
            lines = _waiting(notice, mine, retracted)
        elif variant.follow_up is not None:
            lines = _queued(mine, [d for d in queued if lang_of(d) == variant.lang])
        found.append(
            FollowUp(
                variant.lang, variant.follow_up, notice.expires_at, notice.followed_up_at, lines
            )
        )
    return found


def _waiting(
    notice: Notice, posts: list[Delivery], retracted: set[int | None]
) -> list[FollowUpPost]:
    """Before expiry: each account of ``posts`` (one language's) whose post may still be
    published (neither cancelled nor retracted), pending until the notice's expiry."""
    live = {
        d.account for d in posts if d.state != DeliveryState.CANCELLED and d.id not in retracted
    }
    accounts = dict.fromkeys(d.account for d in posts if d.account in live)
    return [FollowUpPost(a, WAITING, notice.expires_at, None, None, None) for a in accounts]


def _queued(posts: list[Delivery], made: list[Delivery]) -> list[FollowUpPost]:
    """Once queued: each follow-up delivery ``made`` as it stands, then each account of
    ``posts`` (one language's) that got none, skipped."""
    got = {d.account for d in made}
    return [
        FollowUpPost(d.account, d.state, d.due_at, d.published_at, d.remote_url, d.last_error)
        for d in made
    ] + [
        FollowUpPost(a, SKIPPED, None, None, None, "no published post to reply to")
        for a in dict.fromkeys(d.account for d in posts)
        if a not in got
    ]
