"""One RFC 3161 time stamp: the request (DER, built here so that a digest can be stamped
without its data in memory) and the checks a token must pass before it is kept or trusted.

A token is refused, with one line saying why, unless: the TSA granted it; its message imprint
is the sha256 of what was stamped; its nonce is the request's (when the request is known);
its signature holds; the signing certificate chains to one of the configured roots and was
valid at the stamped time; and that certificate has the critical extended key usage
timeStamping (checked by ``rfc3161-client``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from rfc3161_client import (
    PKIStatus,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from bulletin.errors import ArchiveError

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
# DER of AlgorithmIdentifier { sha256, NULL }
_SHA256_ALGORITHM = bytes.fromhex("300d06096086480165030402010500")
MEDIA_QUERY = "application/timestamp-query"
MEDIA_REPLY = "application/timestamp-reply"


class TokenRefused(ArchiveError):
    """A time-stamp token failed a check; the message is one line saying which."""


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _integer(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")  # room for the sign
    return _tlv(0x02, body)


def new_nonce() -> int:
    """A fresh 64-bit nonce (never reused: a replayed answer carries an older one)."""
    return secrets.randbits(64)


def request_der(digest: bytes, nonce: int) -> bytes:
    """The DER TimeStampReq (RFC 3161 section 2.4.1) for sha256 ``digest`` with ``nonce``,
    asking for the TSA's certificate in the answer."""
    if len(digest) != 32:
        raise ValueError("a sha256 digest is 32 bytes")
    imprint = _tlv(0x30, _SHA256_ALGORITHM + _tlv(0x04, digest))
    return _tlv(0x30, _integer(1) + imprint + _integer(nonce) + b"\x01\x01\xff")


@dataclass(frozen=True)
class TokenInfo:
    """What a checked token says: when (``gen_time``, UTC), who signed it (``tsa``, the
    signing certificate's subject), its serial number and policy."""

    gen_time: datetime
    tsa: str
    serial: int
    policy: str

    def line(self) -> str:
        return f"time-stamped {self.gen_time.isoformat()} by {self.tsa} (serial {self.serial})"


def parse(data: bytes) -> TimeStampResponse:
    """The TimeStampResp in ``data``.

    :raises TokenRefused: not a DER TimeStampResp.
    """
    try:
        return decode_timestamp_response(data)
    except ValueError:
        raise TokenRefused("the answer is not an RFC 3161 time-stamp response") from None


def _signer(response: TimeStampResponse) -> str:
    """The subject of the certificate that signed ``response`` (or its issuer and serial)."""
    signers = list(response.signed_data.signer_infos)
    if len(signers) != 1:
        return "an unknown TSA"
    signer = signers[0]
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer == signer.issuer and cert.serial_number == signer.serial_number:
            return cert.subject.rfc4514_string()
    return f"serial {signer.serial_number} of {signer.issuer.rfc4514_string()}"


_VERIFY_ERROR = re.compile(r'Verify error: ([^"]+)"')


def _reason(error: VerificationError) -> str:
    """One line from ``rfc3161-client``'s error (whose chain errors quote OpenSSL's stack)."""
    text = str(error)
    found = _VERIFY_ERROR.search(text)
    if found:
        return f"the TSA's certificate does not verify against the configured roots: {found[1]}"
    if "Unable to verify pkcs7 signature" in text or "certificates" in text.lower():
        return "the token's signature does not verify against the configured roots"
    return text.splitlines()[0].rstrip(".").lower() if text else "it does not verify"


def check(
    data: bytes,
    digest: bytes,
    roots: list[x509.Certificate],
    nonce: int | None = None,
) -> TokenInfo:
    """Check the TimeStampResp ``data`` for sha256 ``digest`` against ``roots`` (and the
    request's ``nonce``, when known); see the module doc.

    :raises TokenRefused: one line naming the failed check.
    """
    response = parse(data)
    if response.status != PKIStatus.GRANTED:
        said = "; ".join(response.status_string) or f"status {response.status}"
        raise TokenRefused(f"the TSA did not grant the time stamp ({said})")
    info = response.tst_info
    imprint = info.message_imprint
    if imprint.hash_algorithm != SHA256_OID:
        algorithm = imprint.hash_algorithm.dotted_string
        raise TokenRefused(f"the token stamps another hash ({algorithm}), not sha256")
    if imprint.message != digest:
        raise TokenRefused(
            f"the token's message imprint {imprint.message.hex()} is not the sha256 of what "
            f"was stamped ({digest.hex()})"
        )
    if nonce is not None and info.nonce != nonce:
        raise TokenRefused("the token's nonce is not the request's (a replayed answer?)")
    if not roots:
        raise TokenRefused("no CA roots to check the token against")
    builder = VerifierBuilder(roots=list(roots))
    try:
        builder.build().verify(response, digest)
    except VerificationError as e:
        raise TokenRefused(_reason(e)) from None
    except ValueError as e:  # a malformed certificate inside the token
        raise TokenRefused(f"the token cannot be checked: {e}") from None
    return TokenInfo(
        gen_time=info.gen_time,
        tsa=_signer(response),
        serial=info.serial_number,
        policy=info.policy.dotted_string,
    )
