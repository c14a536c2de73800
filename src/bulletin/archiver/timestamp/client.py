"""Asking the ``[timestamp]`` authorities for a time stamp over HTTP (RFC 3161 section 3.4).

``rfc3161-client`` does no network I/O: the DER request is POSTed here with ``requests``
(``Content-Type: application/timestamp-query``), each authority with a timeout and the
project's retry policy for short waits only (:class:`~bulletin.connectors.retry.RetryPolicy`).
The authorities are tried in order and the first answer that passes every check of
:func:`bulletin.archiver.timestamp.token.check` (nonce included) is kept. A longer outage is
the caller's: it keeps what it could not stamp and tries again later.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bulletin.archiver.timestamp.token import (
    MEDIA_QUERY,
    MEDIA_REPLY,
    TokenInfo,
    TokenRefused,
    check,
    new_nonce,
    request_der,
)
from bulletin.config.timestamp import AuthoritySettings, TimestampSettings, load_pem_certificates
from bulletin.connectors.retry import RetryPolicy
from bulletin.errors import ArchiveError, Rejected, Retryable

if TYPE_CHECKING:
    from collections.abc import Iterable

#: a TSA answers in well under a second; three tries within a few seconds, then give up
TSA_RETRY = RetryPolicy(attempts=3, initial_wait=0.5, max_wait=2.0, budget=4.0)
CONNECT_TIMEOUT = 5.0


class TimestampUnavailable(ArchiveError):
    """No configured authority gave a token that passed the checks; the message says, one
    clause per authority, why."""


@dataclass(frozen=True)
class Stamp:
    """A checked token: the TimeStampResp as received (DER), who answered (the URL without
    credentials) and what it says."""

    token: bytes
    url: str
    info: TokenInfo


def roots_of(authority: AuthoritySettings) -> list[x509.Certificate]:
    """The certificates of ``authority``'s ``ca_bundle`` (empty when it cannot be read now:
    every token is then refused, so nothing unchecked is kept)."""
    try:
        return load_pem_certificates(authority.ca_bundle)
    except ValueError:
        return []


def all_roots(authorities: Iterable[AuthoritySettings]) -> list[x509.Certificate]:
    """Every certificate of every configured ``ca_bundle``, once each."""
    seen: dict[bytes, x509.Certificate] = {}
    for authority in authorities:
        for cert in roots_of(authority):
            seen.setdefault(cert.public_bytes(Encoding.DER), cert)
    return list(seen.values())


def _post(url: str, body: bytes, timeout: float) -> bytes:
    """One POST; a network failure or a 5xx is worth retrying, anything else is not."""
    import requests  # here: `bulletin status` reads this module and sends nothing

    try:
        answer = requests.post(
            url,
            data=body,
            headers={"Content-Type": MEDIA_QUERY, "Accept": MEDIA_REPLY},
            timeout=(CONNECT_TIMEOUT, timeout),
        )
    except requests.RequestException as e:
        raise Retryable(f"no answer ({type(e).__name__})") from None
    if answer.status_code >= 500 or answer.status_code == 429:
        raise Retryable(f"HTTP {answer.status_code}")
    if answer.status_code != 200:
        raise Rejected(f"HTTP {answer.status_code}")
    kind = answer.headers.get("Content-Type", "").split(";")[0].strip()
    if kind != MEDIA_REPLY:
        raise Rejected(f"answered {kind or 'no content type'}, not {MEDIA_REPLY}")
    return answer.content


def stamp_digest(
    settings: TimestampSettings, digest: bytes, retry: RetryPolicy = TSA_RETRY
) -> Stamp:
    """A checked time stamp over sha256 ``digest`` from the first authority that gives one.

    :raises TimestampUnavailable: none did (none configured, none answered, or every answer
        was refused); the message names each authority and why, never a credential.
    """
    if not settings.authorities:
        raise TimestampUnavailable("no time-stamp authority is configured ([timestamp])")
    reasons: list[str] = []
    for authority in settings.authorities:
        nonce = new_nonce()
        body = request_der(digest, nonce)
        try:
            post = functools.partial(_post, authority.url, body, settings.timeout)
            data = retry.call(authority.name, "time stamp", post)
            info = check(data, digest, roots_of(authority), nonce)
        except (Retryable, Rejected) as e:
            reasons.append(f"{authority.name}: {e}")
            continue
        except TokenRefused as e:
            reasons.append(f"{authority.name}: refused: {e}")
            continue
        return Stamp(data, authority.name, info)
    raise TimestampUnavailable("no time-stamp authority gave a valid token: " + "; ".join(reasons))
