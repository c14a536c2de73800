"""How a CAP alert maps onto a notice: category, priority, text that fits every target, link,
template values, and the filters that keep an alert out (with the reason)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bulletin.cap.document import Alert, Info
from bulletin.config.settings import Settings
from bulletin.errors import ConfigError, UsageError
from bulletin.publisher import texts
from bulletin.publisher.languages import AREA_WORDS, ISSUED_BY_WORDS, word_in

# Event (case-insensitive) → category; [cap.categories] adds to and overrides it.
DEFAULT_EVENT_CATEGORIES: dict[str, str] = {
    "tornado warning": "weather-emergency",
    "tornado emergency": "weather-emergency",
    "severe thunderstorm warning": "weather-emergency",
    "flash flood warning": "weather-emergency",
    "flash flood emergency": "weather-emergency",
    "flood warning": "weather-emergency",
    "hurricane warning": "weather-emergency",
    "tropical storm warning": "weather-emergency",
    "storm surge warning": "weather-emergency",
    "blizzard warning": "weather-emergency",
    "winter storm warning": "weather-emergency",
    "ice storm warning": "weather-emergency",
    "extreme heat warning": "weather-emergency",
    "excessive heat warning": "weather-emergency",
    "extreme cold warning": "weather-emergency",
    "high wind warning": "weather-emergency",
    "tsunami warning": "weather-emergency",
    "evacuation immediate": "evacuation",
    "evacuation warning": "evacuation",
    "shelter in place warning": "shelter-in-place",
    "hazardous materials warning": "shelter-in-place",
    "civil danger warning": "public-safety-advisory",
    "civil emergency message": "public-safety-advisory",
    "law enforcement warning": "public-safety-advisory",
    "local area emergency": "public-safety-advisory",
    "child abduction emergency": "missing-person",
    "blue alert": "public-safety-advisory",
    "911 telephone outage emergency": "public-safety-advisory",
}
SEVERITY_RANK = {"Extreme": 4, "Severe": 3, "Moderate": 2, "Minor": 1, "Unknown": 0}
PRIORITY_RANK = {"emergency": 3, "advisory": 2, "community": 1}
ELLIPSIS = "\u2026"


# -- fields ---------------------------------------------------------------------------------


def category_for(settings: Settings, info: Info) -> str:
    """The notice category of ``info``: [cap.categories], the built-in event map, then the
    response type (Evacuate, Shelter), then severity and urgency."""
    event = info.event.strip().lower()
    configured = {k.strip().lower(): v for k, v in settings.cap.categories.items()}
    if event in configured:
        return configured[event]
    if event in DEFAULT_EVENT_CATEGORIES:
        return DEFAULT_EVENT_CATEGORIES[event]
    if "Evacuate" in info.response_types:
        return "evacuation"
    if "Shelter" in info.response_types and "Met" not in info.categories:
        return "shelter-in-place"
    if _urgent(info):
        return "public-safety-advisory"
    return "general"


def _urgent(info: Info) -> bool:
    return info.severity in ("Extreme", "Severe") and info.urgency in ("Immediate", "Expected")


def priority_for(settings: Settings, category: str, info: Info) -> str:
    """The higher of the category's priority and the one severity and urgency call for:
    Extreme/Severe and Immediate/Expected → emergency; Moderate or Severe-but-later →
    advisory; milder → the category's."""
    by_category = settings.publisher.categories[category]
    if _urgent(info):
        by_alert = "emergency"
    elif SEVERITY_RANK.get(info.severity, 0) >= SEVERITY_RANK["Moderate"]:
        by_alert = "advisory"
    else:
        by_alert = "community"
    return max(by_category, by_alert, key=lambda p: PRIORITY_RANK[p])


def link_for(info: Info) -> str | None:
    """``<web>`` when it is an http(s) address."""
    web = info.web.strip()
    return web if web.lower().startswith(("http://", "https://")) else None


def compose_text(
    settings: Settings, targets: Sequence[str], info: Info, link: str | None, prefix: str = ""
) -> str:
    """Headline, area and instruction, shortened until the text fits every target as its
    platform counts it. The instruction is what people must do, so it is kept longest: first
    it is cut at a word down to its first sentence, then the headline gives way to the event
    name, then the area is cut; only then is the headline itself cut."""
    headline = prefix + (info.headline or info.event)
    headings = list(dict.fromkeys([headline, prefix + info.event]))
    area = info.area_desc
    area_words = area_line(info).split() if area and area.lower() not in headline.lower() else []
    words = info.instruction.split()
    first = next((i + 1 for i, w in enumerate(words) if w.endswith((".", "!", "?"))), len(words))

    def fits(text: str) -> bool:
        return fits_targets(settings, targets, text, link)

    def compose(heading: str, area_count: int, count: int) -> str:
        lines = [heading]
        if area_count:
            lines.append(_cut(area_words, area_count))
        if count:
            lines.append(_cut(words, count))
        return "\n".join(lines)

    candidates = [
        (heading, len(area_words), count)
        for heading in headings
        for count in range(len(words), first - 1, -1)
    ] + [(headings[-1], n, first) for n in [*range(len(area_words) - 1, 1, -1), 0]]
    for heading, area_count, count in candidates:
        text = compose(heading, area_count, count)
        if fits(text):
            return text
    must = [_cut(words, first)] if words else []
    for cut in range(len(headline), 20, -10):  # even the headline is too long: shorten it
        text = "\n".join([headline[:cut].rstrip() + ELLIPSIS, *must])
        if fits(text):
            return text
    return headline[:20] + ELLIPSIS


def area_line(info: Info) -> str:
    """ "Area: <areaDesc>" in the language of ``info`` ("Zona: ..." for ``es-US``)."""
    return word_in(AREA_WORDS, info.language) + info.area_desc


def _cut(words: Sequence[str], count: int) -> str:
    return " ".join(words[:count]) + (ELLIPSIS if count < len(words) else "")


def fits_targets(settings: Settings, targets: Sequence[str], text: str, link: str | None) -> bool:
    """Whether ``text`` (with ``link``) fits every one of ``targets`` as its platform counts."""
    for target in targets:
        platform = settings.accounts[target].platform
        if not texts.plan(settings, target, platform, text, link, allow_thread=False).fits:
            return False
    return len(text) <= settings.publisher.max_text_length


def target_texts(
    settings: Settings, targets: Sequence[str], info: Info, link: str | None, prefix: str = ""
) -> dict[str, str]:
    """The fullest text each target allows, on its own: everything the alert says
    (:func:`full_text`) where it fits, else :func:`compose_text` for that target alone."""
    whole = full_text(info, prefix, settings.publisher.max_text_length)
    return {
        target: whole
        if fits_targets(settings, [target], whole, link)
        else compose_text(settings, [target], info, link, prefix)
        for target in targets
    }


def full_text(info: Info, prefix: str = "", limit: int = 5000) -> str:
    """Everything the alert says, for the targets that have room for it."""
    parts = [
        prefix + (info.headline or info.event),
        area_line(info) if info.area_desc else "",
        " ".join(info.description.split()),
        " ".join(info.instruction.split()),
        word_in(ISSUED_BY_WORDS, info.language).format(sender=info.sender_name)
        if info.sender_name
        else "",
    ]
    text = "\n\n".join(p for p in parts if p)
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def template_values(settings: Settings, alert: Alert, info: Info) -> dict[str, str]:
    """Values a CAP template may use; a template declares the ones it wants."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.agency.time_zone)
    values = {
        "event": info.event,
        "headline": info.headline or info.event,
        "area": info.area_desc,
        "sender_name": info.sender_name or alert.sender,
        "instruction": " ".join(info.instruction.split()),
        "description": " ".join(info.description.split()),
        "severity": info.severity,
        "urgency": info.urgency,
        "certainty": info.certainty,
    }
    if info.expires is not None:
        local = info.expires.astimezone(zone)
        values["expires"] = local.strftime("%H:%M")
        values["expires_date"] = local.date().isoformat()
    return values


# -- filters --------------------------------------------------------------------------------


def ignore_reason(
    settings: Settings, alert: Alert, info: Info | None, now: datetime, follows_up: bool = False
) -> str | None:
    """Why ``alert`` is not imported, or None to import it. An Update of an alert imported
    here (``follows_up``) passes the event, area and severity filters: its notice must follow."""
    cap = settings.cap
    if alert.status not in cap.statuses:
        return f"status {alert.status} is not imported (imported: {', '.join(cap.statuses)})"
    if alert.scope != "Public":
        return f"scope {alert.scope}: only Public alerts are published"
    if alert.msg_type in ("Ack", "Error"):
        return f"msgType {alert.msg_type} acknowledges or reports; nothing to publish"
    if alert.msg_type == "Cancel":
        return None  # cancels what it references, whatever the filters say now
    if info is None:
        return "the alert has no <info> block"
    if not follows_up:
        filtered = _filtered(settings, info)
        if filtered is not None:
            return filtered
    if info.expires is not None and info.expires <= now:
        return f"expired at {info.expires.isoformat()}"
    return None


def _filtered(settings: Settings, info: Info) -> str | None:
    """Why the event, area and severity filters keep ``info`` out, or None."""
    cap = settings.cap
    event = info.event.strip().lower()
    if cap.events and event not in {e.strip().lower() for e in cap.events}:
        return f"event {info.event!r} is not in [cap] events"
    if event in {e.strip().lower() for e in cap.ignore_events}:
        return f"event {info.event!r} is in [cap] ignore_events"
    if SEVERITY_RANK[info.severity] < SEVERITY_RANK[cap.min_severity]:
        return f"severity {info.severity} is below [cap] min_severity {cap.min_severity}"
    if cap.areas and not _in_area(info, cap.areas):
        return f"area {info.area_desc or '(none)'!r} matches none of [cap] areas"
    return None


def _in_area(info: Info, wanted: Sequence[str]) -> bool:
    for area in info.areas:
        codes = {value.strip().upper() for _name, value in area.geocodes}
        for item in wanted:
            if item.strip().upper() in codes or item.strip().lower() in area.desc.lower():
                return True
    return False


def check_settings(settings: Settings, targets: Sequence[str] = ()) -> None:
    """Check [cap] and the accounts an import was given (``targets``; none: [cap] targets).

    :raises ConfigError: [cap] names a target or category that does not exist, or no target
        is given at all.
    :raises UsageError: one of ``targets`` is not a configured account.
    """
    cap = settings.cap
    where = f"{settings.source}: cap"
    if not cap.targets and not targets:
        raise ConfigError(f"{where}.targets: name the accounts CAP notices go to")
    for target in cap.targets:
        if target not in settings.accounts:
            raise ConfigError(f"{where}.targets: unknown account {target!r}")
    for target in targets:
        if target not in settings.accounts:
            known = ", ".join(sorted(settings.accounts))
            raise UsageError(f"unknown account {target!r} (accounts: {known})")
    for event, category in cap.categories.items():
        if category not in settings.publisher.categories:
            raise ConfigError(f"{where}.categories.{event}: unknown category {category!r}")


def template_for(settings: Settings, event: str) -> str | None:
    wanted = event.strip().lower()
    for key, name in settings.cap.templates.items():
        if key.strip().lower() == wanted:
            return name
    return None


def other_languages(settings: Settings, alert: Alert, chosen: Info) -> list[tuple[str, Info]]:
    """The ``<info>`` blocks of ``alert`` in the agency's other languages (``[agency]
    languages`` after the first), each with its tag: one notice carries them as variants.
    A block matches a tag by its ``<language>`` (``es`` matches ``es-US``)."""
    found: list[tuple[str, Info]] = []
    for lang in settings.agency.languages[1:]:
        wanted = lang.lower()
        for info in alert.infos:
            have = info.language.lower()
            if info is not chosen and (have == wanted or have.startswith(wanted + "-")):
                found.append((lang, info))
                break
    return found
