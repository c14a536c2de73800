"""Common Alerting Protocol 1.2: safe parsing and validation of one ``<alert>``.

The checks follow the OASIS standard "Common Alerting Protocol Version 1.2" (1 July 2010),
section 3 (the data dictionary, 3.2.1-3.2.4) and its schema CAP-v1.2.xsd (section 3.4): the
element order of each ``xs:sequence``, the required elements, the enumerations, the
date-time pattern of 3.3.2 (no "Z" designator) and the character rules of ``identifier`` and
``sender``. A document that breaks one is refused with one line naming the element.

Parsing goes through defusedxml with DTDs forbidden: no entity is ever expanded and nothing
is fetched, so an entity bomb or an external entity is refused at once, whatever its size.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bulletin.errors import Refused

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
ATOM_NS = "http://www.w3.org/2005/Atom"
OLDER_CAP = {
    "urn:oasis:names:tc:emergency:cap:1.1": "1.1",
    "http://www.incident.com/cap/1.0": "1.0",
}

# 3.2.1 / 3.2.2 enumerations
STATUS = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPE = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPE = ("Public", "Restricted", "Private")
CATEGORY = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
RESPONSE_TYPE = (
    "Shelter",
    "Evacuate",
    "Prepare",
    "Execute",
    "Avoid",
    "Monitor",
    "Assess",
    "AllClear",
    "None",
)
URGENCY = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITY = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTY = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# 3.3.2: "2002-05-24T16:49:00-07:00"; alphabetic time zone designators such as "Z" MUST NOT
# be used (CAP-v1.2.xsd restricts xs:dateTime with this pattern).
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
# 3.2.1 identifier/sender: "MUST NOT include spaces, commas or restricted characters (< and &)"
_NO_SPACES = re.compile(r"^[^\s,<&]+$")

ONE, OPTIONAL, SOME, ANY = (1, 1), (0, 1), (1, None), (0, None)
Occurs = tuple[int, int | None]

# Each xs:sequence of CAP-v1.2.xsd: (element, (minOccurs, maxOccurs)), in order.
ALERT_SEQ: tuple[tuple[str, Occurs], ...] = (
    ("identifier", ONE),
    ("sender", ONE),
    ("sent", ONE),
    ("status", ONE),
    ("msgType", ONE),
    ("source", OPTIONAL),
    ("scope", ONE),
    ("restriction", OPTIONAL),
    ("addresses", OPTIONAL),
    ("code", ANY),
    ("note", OPTIONAL),
    ("references", OPTIONAL),
    ("incidents", OPTIONAL),
    ("info", ANY),
)
INFO_SEQ: tuple[tuple[str, Occurs], ...] = (
    ("language", OPTIONAL),
    ("category", SOME),
    ("event", ONE),
    ("responseType", ANY),
    ("urgency", ONE),
    ("severity", ONE),
    ("certainty", ONE),
    ("audience", OPTIONAL),
    ("eventCode", ANY),
    ("effective", OPTIONAL),
    ("onset", OPTIONAL),
    ("expires", OPTIONAL),
    ("senderName", OPTIONAL),
    ("headline", OPTIONAL),
    ("description", OPTIONAL),
    ("instruction", OPTIONAL),
    ("web", OPTIONAL),
    ("contact", OPTIONAL),
    ("parameter", ANY),
    ("resource", ANY),
    ("area", ANY),
)
RESOURCE_SEQ: tuple[tuple[str, Occurs], ...] = (
    ("resourceDesc", ONE),
    ("mimeType", ONE),
    ("size", OPTIONAL),
    ("uri", OPTIONAL),
    ("derefUri", OPTIONAL),
    ("digest", OPTIONAL),
)
AREA_SEQ: tuple[tuple[str, Occurs], ...] = (
    ("areaDesc", ONE),
    ("polygon", ANY),
    ("circle", ANY),
    ("geocode", ANY),
    ("altitude", OPTIONAL),
    ("ceiling", OPTIONAL),
)
PAIR_SEQ: tuple[tuple[str, Occurs], ...] = (("valueName", ONE), ("value", ONE))
COMPLEX = {
    "info": INFO_SEQ,
    "resource": RESOURCE_SEQ,
    "area": AREA_SEQ,
    "eventCode": PAIR_SEQ,
    "parameter": PAIR_SEQ,
    "geocode": PAIR_SEQ,
}
ENUMS = {
    "status": STATUS,
    "msgType": MSG_TYPE,
    "scope": SCOPE,
    "category": CATEGORY,
    "responseType": RESPONSE_TYPE,
    "urgency": URGENCY,
    "severity": SEVERITY,
    "certainty": CERTAINTY,
}
DATETIMES = {"sent", "effective", "onset", "expires"}


class CapError(Refused):
    """A document that is not a valid CAP 1.2 alert, or that is unsafe to parse."""


@dataclass(frozen=True)
class Reference:
    """One ``sender,identifier,sent`` triple of ``<references>`` (3.2.1)."""

    sender: str
    identifier: str
    sent: str

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"


@dataclass(frozen=True)
class Area:
    """``<area>`` (3.2.4): its description and its geocodes (UGC, SAME...)."""

    desc: str
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Info:
    """``<info>`` (3.2.2), the fields Bulletin uses."""

    language: str
    categories: tuple[str, ...]
    event: str
    response_types: tuple[str, ...]
    urgency: str
    severity: str
    certainty: str
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str = ""
    headline: str = ""
    description: str = ""
    instruction: str = ""
    web: str = ""
    contact: str = ""
    areas: tuple[Area, ...] = ()

    @property
    def area_desc(self) -> str:
        return "; ".join(a.desc for a in self.areas if a.desc)


@dataclass(frozen=True)
class Alert:
    """``<alert>`` (3.2.1) with its ``<info>`` blocks, the raw bytes and their sha256."""

    identifier: str
    sender: str
    sent: str
    sent_at: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[Reference, ...]
    infos: tuple[Info, ...]
    raw: bytes
    signed: bool = False
    source: str = ""
    note: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def key(self) -> Reference:
        """The triple another alert's ``<references>`` names this one by."""
        return Reference(self.sender, self.identifier, self.sent)

    def info(self, language: str = "en") -> Info | None:
        """The first ``<info>`` in ``language`` (a prefix: "en" matches "en-US"), else the
        first one; a missing ``<language>`` means "en-US" (3.2.2)."""
        wanted = language.lower()
        for info in self.infos:
            if info.language.lower().startswith(wanted):
                return info
        return self.infos[0] if self.infos else None


def parse_xml(data: bytes, max_bytes: int = 2_000_000) -> Element:
    """Parse ``data`` safely: no DTD, no entity, no external reference, bounded size.

    :raises CapError: too large, unsafe, or not well-formed XML.
    """
    if len(data) > max_bytes:
        raise CapError(f"document is {len(data)} bytes; at most {max_bytes} are accepted")
    if not data.strip():
        raise CapError("document is empty")
    try:
        root: Element = SafeET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as e:
        raise CapError(
            f"document refused: it declares a DTD or entities ({type(e).__name__}); CAP "
            "alerts never need one, and entities are never expanded or fetched"
        ) from None
    except ParseError as e:
        raise CapError(f"not well-formed XML: {e}") from None
    return root


def local(tag: str) -> tuple[str, str]:
    """``{ns}name`` as ``(ns, name)``."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def parse_alert(data: bytes, max_bytes: int = 2_000_000) -> Alert:
    """Parse and validate one CAP 1.2 alert document.

    :raises CapError: unsafe, not XML, not CAP 1.2, or invalid (naming the element).
    """
    root = parse_xml(data, max_bytes)
    return alert_from_element(root, data)


def alert_from_element(root: Element, raw: bytes) -> Alert:
    """Validate ``root`` (an ``<alert>``) and read it; ``raw`` is kept as received.

    :raises CapError: not a CAP 1.2 alert, or invalid (naming the element).
    """
    ns, name = local(root.tag)
    if ns in OLDER_CAP and name == "alert":
        raise CapError(f"this is a CAP {OLDER_CAP[ns]} alert; only CAP 1.2 ({CAP_NS}) is read")
    if ns == ATOM_NS and name == "feed":
        raise CapError("this is an Atom feed, not a CAP alert")
    if (ns, name) != (CAP_NS, "alert"):
        shown = f"{{{ns}}}{name}" if ns else name
        raise CapError(
            f"not a CAP 1.2 alert: the root element is <{shown}>, not <alert> in {CAP_NS}"
        )
    validate(root)
    return _read_alert(root, raw)


# -- validation -----------------------------------------------------------------------------


def validate(root: Element) -> None:
    """Check ``<alert>`` against CAP-v1.2.xsd's structure and the spec's value rules.

    :raises CapError: the first problem, naming the element (``alert/info[1]/urgency``).
    """
    children = list(root)
    signatures = 0
    while children and local(children[-1].tag)[0] == DSIG_NS:
        # <any namespace="http://www.w3.org/2000/09/xmldsig#"> closes the alert sequence
        children.pop()
        signatures += 1
    _check_sequence("alert", children, ALERT_SEQ)
    values = {local(c.tag)[1]: (c.text or "").strip() for c in children}
    for field in ("identifier", "sender"):
        if not _NO_SPACES.match(values[field]):
            raise CapError(
                f"alert/{field}: {values[field]!r} must not be empty or contain spaces, "
                "commas, < or & (CAP 1.2 section 3.2.1)"
            )
    if values["scope"] == "Restricted" and not values.get("restriction"):
        raise CapError("alert/restriction: required when scope is Restricted (3.2.1)")
    if values["scope"] == "Private" and not values.get("addresses"):
        raise CapError("alert/addresses: required when scope is Private (3.2.1)")
    if values.get("references"):
        parse_references(values["references"])


def _check_sequence(
    path: str, children: Sequence[Element], sequence: tuple[tuple[str, Occurs], ...]
) -> None:
    position = 0
    counts = [0] * len(sequence)
    names = [local(c.tag)[1] for c in children]
    for number, child in enumerate(children):
        ns, name = local(child.tag)
        if ns != CAP_NS:
            where = f"{{{ns}}}{name}" if ns else name
            raise CapError(f"{path}: unexpected element <{where}> (not in the CAP 1.2 namespace)")
        index = next((i for i in range(position, len(sequence)) if sequence[i][0] == name), None)
        if index is None:
            known = any(n == name for n, _ in sequence)
            raise CapError(
                f"{path}/{name}: "
                + ("out of order or repeated" if known else "not an element of CAP 1.2 here")
                + f" (order: {', '.join(n for n, _ in sequence)})"
            )
        for skipped in range(position, index):
            wanted, (least, _most) = sequence[skipped]
            if counts[skipped] < least and wanted in names[number:]:
                raise CapError(f"{path}/{name}: out of order ({wanted} comes before it)")
            _check_min(path, sequence[skipped], counts[skipped])
        position = index
        counts[index] += 1
        most = sequence[index][1][1]
        if most is not None and counts[index] > most:
            raise CapError(f"{path}/{name}: appears {counts[index]} times; at most {most}")
        _check_element(f"{path}/{name}" + (f"[{counts[index]}]" if most != 1 else ""), child)
    for skipped in range(position, len(sequence)):
        _check_min(path, sequence[skipped], counts[skipped])


def _check_min(path: str, entry: tuple[str, Occurs], count: int) -> None:
    name, (least, _most) = entry
    if count < least:
        raise CapError(f"{path}/{name}: required element is missing")


def _check_element(path: str, element: Element) -> None:
    name = local(element.tag)[1]
    if name in COMPLEX:
        if (element.text or "").strip():
            raise CapError(f"{path}: text is not allowed here, only elements")
        _check_sequence(path, list(element), COMPLEX[name])
        return
    if len(element):
        raise CapError(f"{path}: must hold text, not elements")
    text = (element.text or "").strip()
    if name in ENUMS and text not in ENUMS[name]:
        raise CapError(f"{path}: {text!r} is not one of {', '.join(ENUMS[name])}")
    if name in DATETIMES:
        parse_datetime(text, path)
    if name in ("event", "areaDesc", "valueName", "resourceDesc", "mimeType") and not text:
        raise CapError(f"{path}: must not be empty")
    if name == "size" and not text.isdigit():
        raise CapError(f"{path}: {text!r} is not a whole number of bytes")
    if name in ("altitude", "ceiling"):
        try:
            float(text)
        except ValueError:
            raise CapError(f"{path}: {text!r} is not a number") from None


def parse_datetime(text: str, path: str = "sent") -> datetime:
    """A CAP date-time (3.3.2) as aware UTC.

    :raises CapError: not of the form 2002-05-24T16:49:00-07:00.
    """
    if not _DATETIME.match(text):
        raise CapError(
            f"{path}: {text!r} is not a CAP date-time like 2002-05-24T16:49:00-07:00 (3.3.2; "
            "a time zone offset is required and 'Z' is not allowed)"
        )
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        raise CapError(f"{path}: {text!r} is not a valid date and time") from None


def parse_references(text: str) -> tuple[Reference, ...]:
    """``<references>``: space-separated ``sender,identifier,sent`` triples (3.2.1).

    :raises CapError: a triple that is not three comma-separated parts with a valid time.
    """
    found: list[Reference] = []
    for item in text.split():
        parts = item.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError(
                f"alert/references: {item!r} is not a sender,identifier,sent triple (3.2.1)"
            )
        parse_datetime(parts[2], "alert/references")
        found.append(Reference(*parts))
    return tuple(found)


# -- reading --------------------------------------------------------------------------------


def _text(element: Element, name: str) -> str:
    child = element.find(f"{{{CAP_NS}}}{name}")
    return (child.text or "").strip() if child is not None else ""


def _texts(element: Element, name: str) -> tuple[str, ...]:
    return tuple((c.text or "").strip() for c in element.findall(f"{{{CAP_NS}}}{name}"))


def _when(element: Element, name: str) -> datetime | None:
    text = _text(element, name)
    return parse_datetime(text, name) if text else None


def _read_alert(root: Element, raw: bytes) -> Alert:
    sent = _text(root, "sent")
    references = _text(root, "references")
    return Alert(
        identifier=_text(root, "identifier"),
        sender=_text(root, "sender"),
        sent=sent,
        sent_at=parse_datetime(sent),
        status=_text(root, "status"),
        msg_type=_text(root, "msgType"),
        scope=_text(root, "scope"),
        references=parse_references(references) if references else (),
        infos=tuple(_read_info(i) for i in root.findall(f"{{{CAP_NS}}}info")),
        raw=raw,
        signed=root.find(f"{{{DSIG_NS}}}Signature") is not None,
        source=_text(root, "source"),
        note=_text(root, "note"),
    )


def _read_info(info: Element) -> Info:
    areas = tuple(
        Area(
            desc=_text(area, "areaDesc"),
            geocodes=tuple(
                (_text(g, "valueName"), _text(g, "value"))
                for g in area.findall(f"{{{CAP_NS}}}geocode")
            ),
        )
        for area in info.findall(f"{{{CAP_NS}}}area")
    )
    return Info(
        language=_text(info, "language") or "en-US",
        categories=_texts(info, "category"),
        event=_text(info, "event"),
        response_types=_texts(info, "responseType"),
        urgency=_text(info, "urgency"),
        severity=_text(info, "severity"),
        certainty=_text(info, "certainty"),
        effective=_when(info, "effective"),
        onset=_when(info, "onset"),
        expires=_when(info, "expires"),
        sender_name=_text(info, "senderName"),
        headline=_text(info, "headline"),
        description=_text(info, "description"),
        instruction=_text(info, "instruction"),
        web=_text(info, "web"),
        contact=_text(info, "contact"),
        areas=areas,
    )
