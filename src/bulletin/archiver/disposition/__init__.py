"""Disposition: the only way anything archived is ever destroyed.

1. :func:`build_disposition_batch` (nightly, from the daemon) lists the records whose retention
   has passed, whose series says ``destroy-after-approval``, that no open hold or records
   request covers and that are in no other open batch, into a frozen batch with the sha256 of
   its membership.
2. :func:`approve_batch` (an approver) recomputes that membership as it is now and refuses when
   it differs (a record became held, its retention was extended, a row was changed) or when the
   batch was already approved; the batch then goes ``stale`` and its records return to the pool.
   Otherwise it writes a certificate of destruction (an archived object, retained permanently,
   on legal hold and ledgered as kind ``certificate``), marks the records disposed (the rows
   stay) and deletes from the store every object (snapshot, raw answer, image) that no
   retained record and no live notice still refers to; the certificate names each image.

A crash after the certificate is committed and before every deletion is done is finished by
:func:`complete_pending` (run by the nightly job and before each approval).

Modules: :mod:`.batches` (listing), :mod:`.approve`, :mod:`.certificate`, :mod:`.objects`
(what goes from the store, and when).
"""

from __future__ import annotations

from bulletin.archiver.disposition.approve import ApproveResult, approve_batch
from bulletin.archiver.disposition.batches import (
    build_disposition_batch,
    destroyable,
    eligible,
    get_batch,
    list_batches,
    membership_hash,
)
from bulletin.archiver.disposition.certificate import CERTIFICATE_SCHEMA, verify_certificate
from bulletin.archiver.disposition.objects import complete_pending

__all__ = [
    "CERTIFICATE_SCHEMA",
    "ApproveResult",
    "approve_batch",
    "build_disposition_batch",
    "complete_pending",
    "destroyable",
    "eligible",
    "get_batch",
    "list_batches",
    "membership_hash",
    "verify_certificate",
]
