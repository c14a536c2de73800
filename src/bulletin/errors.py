"""The one exception hierarchy of Bulletin.

Every error a user can meet is a :class:`BulletinError`; the command line turns it into a
one-line message and a non-zero exit (2 for :class:`UsageError` and :class:`ConfigError`,
1 otherwise). Library errors are wrapped with ``raise ... from e``. Messages never contain
secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

#: where in a request an error lies: attribute names and list indexes of the application
#: layer's input (``("languages", 0, "lang")``: the ``lang`` of ``NoticeDraft.languages[0]``)
FieldPath = tuple[str | int, ...]


class BulletinError(Exception):
    """Base of every error Bulletin raises on purpose.

    ``remedy`` names, door-neutrally, what the user can do about it (``"late-ok"``,
    ``"override"``...): each door says it in its own words (the command line names its flag).
    The message itself never names a flag. ``field``, when known, is the input it is about
    (see :data:`FieldPath`); a door names it in its own words (the API as a JSON pointer).
    """

    exit_code = 1

    def __init__(
        self, *args: object, remedy: str | None = None, field: FieldPath | None = None
    ) -> None:
        super().__init__(*args)
        self.remedy = remedy
        self.field = field


@contextmanager
def about(*field: str | int) -> Iterator[None]:
    """Run a check whose :class:`BulletinError` is about ``field``: an error raised inside
    that names no field yet is given this one (an inner, more precise one is kept)."""
    try:
        yield
    except BulletinError as e:
        if getattr(e, "field", None) is None:
            e.field = field
        raise


class UsageError(BulletinError):
    """The command was given something it cannot use (bad value, bad combination)."""

    exit_code = 2


class ConfigError(BulletinError):
    """The configuration is missing, unreadable or invalid; names the file, key and reason."""

    exit_code = 2


class Refused(BulletinError):
    """A well-formed request that the rules forbid (approve twice, publish after expiry...)."""


class NotFound(BulletinError, LookupError):
    """The named notice, record, account... does not exist."""


class DatabaseError(BulletinError):
    """The database is unreachable, locked or not initialised."""


class ConnectorError(BulletinError):
    """A platform call failed. ``retryable`` says whether trying again may help.

    ``code`` names the failure in a word a program can act on (``rate-limited``,
    ``duplicate``, ``gone``, ``auth``, ``timeout``, ``server-error``, ``rejected``...), or is
    the platform's own error code; each class has a default the raise site may refine.
    """

    retryable = False
    default_code = "error"

    def __init__(self, *args: object, code: str | None = None, remedy: str | None = None) -> None:
        super().__init__(*args, remedy=remedy)
        self.code = code or self.default_code


class Retryable(ConnectorError):
    """A transient failure (5xx, connection refused) before the platform acted."""

    retryable = True
    default_code = "server-error"


class RateLimited(Retryable):
    """The platform asked us to wait; ``retry_after`` is when it may be tried again."""

    default_code = "rate-limited"

    def __init__(
        self, message: str, retry_after: datetime | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Rejected(ConnectorError):
    """The platform refused the content for good (duplicate, too long, policy); never retried."""

    default_code = "rejected"


class Duplicate(Rejected):
    """The platform refuses the post as a duplicate of one it already has (X 403 duplicate
    content, Graph 506): after an uncertain attempt, that post may be ours."""

    default_code = "duplicate"


class Gone(Rejected):
    """The platform says the object named does not exist (deleted, or never visible to these
    credentials): a deletion finds it already done, a read finds nothing."""

    default_code = "gone"


class AuthError(ConnectorError):
    """Credentials are missing, expired or lack a permission; alerted, never retried."""

    default_code = "auth"


class Ambiguous(ConnectorError):
    """The request may or may not have taken effect (timeout after sending).

    The caller must look for the post on the platform before trying again.
    """

    retryable = True
    default_code = "timeout"


class MalformedResponse(ConnectorError):
    """The platform answered with something we cannot parse; ``raw`` keeps it for quarantine."""

    retryable = True
    default_code = "malformed"

    def __init__(self, message: str, raw: bytes = b"", code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.raw = raw


class ArchiveError(BulletinError):
    """The WORM store or the ledger could not do what was asked."""


class RetentionViolation(ArchiveError):
    """The action would alter, remove or shorten the retention of a retained or held object."""


class IntegrityError(ArchiveError):
    """A stored object or ledger entry does not match its hash or its place in the chain."""


class StoreUnavailable(ArchiveError):
    """The store cannot be reached or written (network, full disk); nothing was recorded."""


class IllegalTransition(BulletinError):
    """A move between two states that the state machine does not allow (a bug, not a user's
    mistake): names the object, the state it is in and the one asked for."""
