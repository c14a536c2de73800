"""The states a delivery, a notice and an archived record can be in, and a delivery's kinds.

Each is a :class:`~enum.StrEnum` whose values are the words stored in the database, so a
member compares equal to the stored text (``DeliveryState.PUBLISHED == "published"``).
The moves a delivery may make between its states are in
:mod:`bulletin.publisher.delivery.states`.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryState(StrEnum):
    """Where one notice's post to one account stands."""

    PENDING = "pending"  # waiting for its due time
    IN_FLIGHT = "in-flight"  # claimed by a worker, under a lease
    UNCERTAIN = "uncertain"  # an attempt may have reached the platform: look before retrying
    LATE = "late"  # a routine post's time passed while no daemon ran: waits for a person
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DELETED = "deleted"  # a deletion delivery that removed its parent's post


class DeliveryKind(StrEnum):
    """What a delivery sends: the notice's post, or an act on a published post."""

    POST = "post"
    FOLLOW_UP = "follow-up"
    CORRECTION = "correction"
    UPDATE = "update"  # news posted as a reply to the published posts, at once
    RETRACTION = "retraction"
    DELETION = "deletion"


class NoticeState(StrEnum):
    """draft → approved → published | partially-published | failed, or cancelled;
    ``retracted`` once withdrawn after approval (``expired`` is kept for older notices)."""

    DRAFT = "draft"
    APPROVED = "approved"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially-published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRACTED = "retracted"
    EXPIRED = "expired"


class RecordState(StrEnum):
    """How an archived post or comment stood on the platform when this version was taken."""

    VISIBLE = "visible"
    HIDDEN = "hidden"
    DELETED = "deleted"
