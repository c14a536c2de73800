"""``[timestamp]``: the RFC 3161 time-stamp authorities that vouch for when each ledger
checkpoint and each production existed.

``authorities = [{url = "...", ca_bundle = "..."}]``: tried in order, any one answer suffices.
``ca_bundle`` is a PEM file of the roots (and any intermediates) a token from that authority
must chain to; a token chaining to none of the configured roots is refused. Empty (the
default): nothing is time-stamped.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from pydantic import Field, field_validator

from bulletin.config.values import Section


def load_pem_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates in PEM file ``path``.

    :raises ValueError: the file cannot be read or holds no PEM certificate.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"ca_bundle {path} cannot be read: {e.strerror or e}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError(f"ca_bundle {path} holds no PEM certificate") from None
    return certificates


class AuthoritySettings(Section):
    """One time-stamp authority: where to POST the request, and the roots its tokens chain to.

    A commercial TSA's URL may carry credentials (``https://user:key@tsa.example/``, or a key
    in the query): :attr:`name` is the URL without them, the only form ever logged or shown.
    """

    url: str = Field(repr=False)
    ca_bundle: Path

    @property
    def name(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class TimestampSettings(Section):
    """``[timestamp]``: see the module doc. ``timeout`` is seconds per request."""

    authorities: list[AuthoritySettings] = Field(default_factory=list)
    timeout: float = Field(default=10.0, gt=0, le=120)

    @property
    def enabled(self) -> bool:
        return bool(self.authorities)
