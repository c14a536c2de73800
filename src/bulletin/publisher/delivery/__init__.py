"""Delivery: claim what is due, publish it exactly once, archive what was published.

Exactly once rests on three rules:

1. The claim (state ``in-flight``, owner, lease, ``attempt_started_at``) is committed *before*
   the platform is called, so a crash after the call leaves a visible trace of the attempt.
2. A delivery found ``in-flight`` with an expired lease, or ``uncertain`` after an ambiguous
   failure, is reconciled first: the connector looks for the post on the platform, and only
   when it is not there is the post tried again.
3. Every outcome is written only while this worker still owns the claim.

One module per job: :mod:`.states` (the state machine), :mod:`.claims` (claims and leases),
:mod:`.calls` (platform calls and reconciliation), :mod:`.posts` (what is sent),
:mod:`.archiving` (archiving what was published), :mod:`.worker` (what each outcome means).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulletin.publisher.delivery.claims import Claim, LeaseKeeper
    from bulletin.publisher.delivery.posts import (
        delivery_key,
        highest_notice_on_platforms,
        notice_of_key,
        outgoing_post,
        reply_target,
    )
    from bulletin.publisher.delivery.states import refresh_notice_state
    from bulletin.publisher.delivery.worker import DeliveryWorker, Outcome

# Each name's module, imported on first use: approving a notice needs refresh_notice_state,
# not the worker, its platform calls and retries.
_MODULE_OF = {
    "Claim": "claims",
    "LeaseKeeper": "claims",
    "delivery_key": "posts",
    "highest_notice_on_platforms": "posts",
    "notice_of_key": "posts",
    "outgoing_post": "posts",
    "reply_target": "posts",
    "refresh_notice_state": "states",
    "DeliveryWorker": "worker",
    "Outcome": "worker",
}


def __getattr__(name: str) -> object:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)


__all__ = [
    "Claim",
    "DeliveryWorker",
    "LeaseKeeper",
    "Outcome",
    "delivery_key",
    "highest_notice_on_platforms",
    "notice_of_key",
    "outgoing_post",
    "refresh_notice_state",
    "reply_target",
]
