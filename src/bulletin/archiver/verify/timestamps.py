"""The RFC 3161 time stamps on the ledger's checkpoints, as ``verify`` reads them: each token
beside a checkpoint must stamp that checkpoint's sha256 and verify against the configured
roots (``[timestamp]``); its time is reported. A checkpoint without one is a warning while
authorities are configured (an outage not yet made up for); a token that no longer verifies,
or a stray one, is a problem."""

from __future__ import annotations

import hashlib

from bulletin.archiver import ledger
from bulletin.archiver.store.base import WormStore
from bulletin.archiver.timestamp.checkpoints import TOKEN_SUFFIX, checkpoint_time
from bulletin.archiver.timestamp.client import all_roots
from bulletin.archiver.timestamp.token import TokenRefused, check
from bulletin.archiver.verify.report import Problem, Report, check_held
from bulletin.config.timestamp import TimestampSettings
from bulletin.errors import NotFound, StoreUnavailable


def check_timestamps(store: WormStore, report: Report, settings: TimestampSettings) -> None:
    """See the module doc: notes (``timestamp``) with each token's time, warnings
    (``checkpoint-unstamped``, ``timestamp-unchecked``), problems (``timestamp-refused``,
    ``timestamp-stray``)."""
    keys = set(store.keys(ledger.CHECKPOINT_PREFIX))
    roots = all_roots(settings.authorities)
    for key in sorted(keys):
        if key.endswith(TOKEN_SUFFIX):
            if key.removesuffix(TOKEN_SUFFIX) not in keys:
                report.problems.append(
                    Problem("timestamp-stray", key, "a time stamp of no checkpoint in the store")
                )
            continue
        if not key.endswith(ledger.CHECKPOINT_SUFFIX):
            continue
        token = key + TOKEN_SUFFIX
        if token not in keys:
            if settings.enabled:
                taken = checkpoint_time(key)
                when = f" (taken {taken:%Y-%m-%d %H:%M} UTC)" if taken else ""
                report.warnings.append(
                    Problem(
                        "checkpoint-unstamped",
                        key,
                        f"no time stamp yet{when}: no time-stamp authority has answered since; "
                        "the daemon tries again every few minutes",
                    )
                )
            continue
        check_held(store, token, report)
        if not roots:
            report.warnings.append(
                Problem(
                    "timestamp-unchecked",
                    token,
                    "no [timestamp] authorities configured, so no roots to check it against",
                )
            )
            continue
        try:
            digest = hashlib.sha256(store.get(key, verify=False)).digest()
            info = check(store.get(token, verify=False), digest, roots)
        except (NotFound, StoreUnavailable) as e:
            report.problems.append(Problem("timestamp-unreadable", token, str(e)))
            continue
        except TokenRefused as e:
            report.problems.append(Problem("timestamp-refused", token, str(e)))
            continue
        report.notes.append(Problem("timestamp", key, info.line()))
