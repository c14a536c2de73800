"""A production's RFC 3161 time stamp: the sha256 of its payload manifest (which names every
payload file and its hash) stamped by a ``[timestamp]`` authority when the bag is finished,
the token kept in the bag as a tag file (``timestamps/manifest-sha256.txt.tsr``, listed in
the tag manifest), and checked again by ``export verify`` against the CA roots the verifier
trusts.

Anyone can check it without Bulletin: ``openssl ts -verify -data manifest-sha256.txt -in
timestamps/manifest-sha256.txt.tsr -CAfile roots.pem``.

No authority answering never stops an export: the bag is finished without a token and the
export says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from bulletin.archiver.export.bagwriter import MANIFEST
from bulletin.archiver.timestamp.client import Stamp, TimestampUnavailable, stamp_digest
from bulletin.archiver.timestamp.token import TokenInfo, TokenRefused, check, parse
from bulletin.config.timestamp import TimestampSettings

STAMP_FILE = "timestamps/manifest-sha256.txt.tsr"


@dataclass(frozen=True)
class ManifestStamp:
    """The outcome of stamping a production: the checked stamp, or why there is none."""

    stamp: Stamp | None
    reason: str | None

    def line(self) -> str:
        if self.stamp is not None:
            return self.stamp.info.line()
        return f"not time-stamped: {self.reason}"


def stamp_manifest(settings: TimestampSettings, manifest_sha256: str) -> ManifestStamp:
    """Stamp the payload manifest whose sha256 is ``manifest_sha256``; never raises for an
    authority's failure (the reason is returned instead)."""
    if not settings.enabled:
        return ManifestStamp(None, "no time-stamp authority is configured ([timestamp])")
    try:
        return ManifestStamp(stamp_digest(settings, bytes.fromhex(manifest_sha256)), None)
    except TimestampUnavailable as e:
        return ManifestStamp(None, str(e))


@dataclass(frozen=True)
class BundleStamp:
    """What ``export verify`` found of a bag's time stamp: ``info`` when it verified,
    ``problem`` when it did not, ``unchecked`` (what the token claims, unverified) when no
    roots were given; all None when the bag has no token."""

    info: TokenInfo | None = None
    problem: str | None = None
    unchecked: str | None = None


def check_bundle_stamp(root: Path, roots: list[x509.Certificate]) -> BundleStamp:
    """Check the token in bag ``root`` against its payload manifest and ``roots``."""
    path = root / STAMP_FILE
    if not path.is_file():
        return BundleStamp()
    token = path.read_bytes()
    manifest = root / MANIFEST
    if not manifest.is_file():
        return BundleStamp(problem=f"{STAMP_FILE}: {MANIFEST} is missing: nothing to check")
    digest = hashlib.sha256()
    with open(manifest, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if not roots:
        try:
            claimed = parse(token).tst_info.gen_time.isoformat()
        except TokenRefused as e:
            return BundleStamp(problem=f"{STAMP_FILE}: refused: {e}")
        return BundleStamp(
            unchecked=f"{STAMP_FILE} says {claimed}, not checked: no CA roots given ([timestamp] "
            "authorities, or a CA bundle to verify with)"
        )
    try:
        return BundleStamp(info=check(token, digest.digest(), roots))
    except TokenRefused as e:
        return BundleStamp(problem=f"{STAMP_FILE}: refused: {e}")
