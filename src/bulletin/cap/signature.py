"""XML-DSig (enveloped ``<Signature>``) of a CAP alert, as CAP 1.2 section 3.3.4.1 allows.

With ``[cap] trust_store`` (a PEM file of the certificates the agency trusts), a signed alert is
verified against it and refused when the signature does not hold. Without a trust store a
signed alert is recorded as ``not-verified``; an alert with no signature as ``unsigned``
(refused when ``require_signature`` is set). Verification needs the optional ``signxml``
package (``pip install 'bulletin[cap-signatures]'``).
"""

from __future__ import annotations

from pathlib import Path

from bulletin.cap.document import CapError
from bulletin.config.publisher import CapSettings
from bulletin.errors import ConfigError

UNSIGNED = "unsigned"
VERIFIED = "verified"
NOT_VERIFIED = "not-verified"


def signature_state(raw: bytes, signed: bool, settings: CapSettings) -> str:
    """``unsigned``, ``verified`` or ``not-verified`` for an alert's raw bytes.

    :raises CapError: a signature that does not verify against the trust store, or an
        unsigned alert when a signature is required.
    :raises ConfigError: a trust store is configured but cannot be read or used.
    """
    if not signed:
        if settings.require_signature:
            raise CapError("alert is not signed and [cap] require_signature is set")
        return UNSIGNED
    if settings.trust_store is None:
        return NOT_VERIFIED
    _verify(raw, Path(settings.trust_store))
    return VERIFIED


def _verify(raw: bytes, trust_store: Path) -> None:
    """Verify the enveloped signature; its X.509 certificate must chain to ``trust_store``."""
    if not trust_store.is_file():
        raise ConfigError(f"[cap] trust_store {trust_store}: no such file")
    try:
        from lxml import etree
        from signxml.exceptions import InvalidInput, InvalidSignature
        from signxml.verifier import XMLVerifier
    except ImportError:
        raise ConfigError(
            "[cap] trust_store is set but signature checks need the signxml package "
            "(pip install 'bulletin[cap-signatures]')"
        ) from None
    # defusedxml has already refused any DTD; this parser fetches and expands nothing either
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        XMLVerifier().verify(raw, ca_pem_file=str(trust_store), parser=parser)
    except InvalidSignature as e:
        raise CapError(f"alert signature does not verify: {e}") from None
    except InvalidInput as e:
        raise CapError(f"alert signature cannot be checked: {e}") from None
