"""What each target account will receive: its text (or variant), its length as the platform
counts it, a numbered thread when allowed, and the estimated cost of posting it.

What differs by platform (limits, how length is counted, threads, where the link goes, the
cost of a post) comes from its :class:`~bulletin.connectors.platforms.PlatformSpec`, measured
without building a client or touching the network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bulletin.config.settings import Settings
from bulletin.connectors.base import Limits
from bulletin.connectors.platforms import PLATFORMS
from bulletin.connectors.platforms import platform as spec_of
from bulletin.errors import UsageError
from bulletin.names import text_problem

# Platforms whose posts can carry replies, so a long text can go out as a numbered thread.
THREAD_PLATFORMS = frozenset(name for name, spec in PLATFORMS.items() if spec.threads)
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def check_text(what: str, text: str) -> None:
    """Refuse a text that would carry a character no platform displays (see
    :func:`bulletin.names.text_problem`): every text a notice publishes passes here.

    :raises UsageError: ``what`` and the character, in one line.
    """
    problem = text_problem(text)
    if problem is not None:
        raise UsageError(f"{what} {problem}; remove it (no platform displays it)")


def check_link(link: str) -> None:
    """A notice's link is an http or https address with a host, nothing else (no
    ``javascript:``, ``file:`` or ``data:``).

    :raises UsageError: what the link is not, in one line.
    """
    parts = urlsplit(link.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"the link {link!r} is not a web address: give http:// or https:// and a host"
        )


@dataclass(frozen=True)
class TargetText:
    """One target's text and what it costs."""

    account: str
    platform: str
    text: str
    length: int  # as the platform counts it, with the link the connector adds
    limit: int
    parts: tuple[str, ...] = ()  # the numbered parts, when it goes out as a thread
    cost: float = 0.0
    lang: str = ""  # the language variant ("": the notice's primary)

    @property
    def label(self) -> str:
        """``feed``, or ``feed[es]`` for a language other than the notice's primary."""
        return self.account + (f"[{self.lang}]" if self.lang else "")

    @property
    def fits(self) -> bool:
        return self.length <= self.limit or bool(self.parts)

    def too_long(self) -> str:
        """One line: how long it is against the limit."""
        weighted = spec_of(self.platform).limits().counts_weighted
        unit = "weighted characters" if weighted else "characters"
        which = f" in {self.lang}" if self.lang else ""
        return (
            f"the text for {self.account}{which} is {self.length} {unit}; {self.platform} "
            f"allows {self.limit}"
        )

    def as_json(self) -> dict[str, object]:
        shown: dict[str, object] = {
            "account": self.account,
            "platform": self.platform,
            "length": self.length,
            "limit": self.limit,
            "parts": len(self.parts) or 1,
            "cost_usd": round(self.cost, 3),
        }
        if self.lang:
            shown["lang"] = self.lang
        return shown


def limits(platform: str) -> Limits:
    """What one post may hold on ``platform``; :raises ConfigError: no such platform."""
    return spec_of(platform).limits()


def measure(platform: str, text: str) -> int:
    """The length of ``text`` as ``platform`` counts it."""
    return spec_of(platform).measure(text)


def as_sent(platform: str, text: str, link: str | None) -> str:
    """The text as the connector sends it: the link appended where the platform carries it in
    the text (X), else unchanged (the link goes beside it)."""
    return spec_of(platform).as_sent(text, link)


def has_url(text: str) -> bool:
    """A URL as X sees one (``example.org`` counts too)."""
    if _URL.search(text):
        return True
    from twitter_text import extract_urls  # slow to import: only when prices differ

    return bool(extract_urls(text))


def variant_for(account: str, platform: str, text: str, variants: Mapping[str, str]) -> str:
    """The account's own wording, else its platform's, else the notice's text."""
    return variants.get(account) or variants.get(platform) or text


def check_variant_keys(variants: Mapping[str, str], targets: Mapping[str, str]) -> None:
    """Each variant's key names a target account or the platform of one.

    :param targets: account → platform.
    :raises UsageError: a key matches no target, or a variant is empty.
    """
    for key, value in variants.items():
        if key not in targets and key not in targets.values():
            known = ", ".join(sorted({*targets, *targets.values()}))
            raise UsageError(
                f"the text for {key}: not a target account or platform ({known})",
                remedy="text-for",
            )
        if not value.strip():
            raise UsageError(f"the text for {key} is empty", remedy="text-for")


def plan(
    settings: Settings,
    account: str,
    platform: str,
    text: str,
    link: str | None,
    allow_thread: bool,
) -> TargetText:
    """Measure ``text`` for ``account``; split it into a thread when it is too long and the
    author allowed it. Never raises for length: see :attr:`TargetText.fits`."""
    limit = limits(platform).max_length
    sent = as_sent(platform, text, link)
    length = measure(platform, sent)
    parts: tuple[str, ...] = ()
    if length > limit and allow_thread and spec_of(platform).threads:
        parts = tuple(split_thread(text, limit, lambda t: measure(platform, t), link))
    posts = [as_sent(platform, parts[0], link), *parts[1:]] if parts else [sent]
    return TargetText(
        account=account,
        platform=platform,
        text=text,
        length=length,
        limit=limit,
        parts=parts,
        cost=estimate_cost(settings, platform, posts),
    )


def estimate_cost(settings: Settings, platform: str, posts: list[str]) -> float:
    """Estimated price of creating ``posts`` on ``platform``: ``[publisher.costs]``, else the
    platform's own estimate (a post with a URL costs more on X)."""
    price = settings.publisher.costs.get(platform, spec_of(platform).cost)
    if price.post == price.post_with_url:
        return price.post * len(posts)
    return sum(price.post_with_url if has_url(p) else price.post for p in posts)


def split_thread(
    text: str, limit: int, measure_text: Callable[[str], int], link: str | None = None
) -> list[str]:
    """Split ``text`` at spaces into parts numbered ``1/3``, ``2/3``... that each fit
    ``limit``; the link (sent with the first part) is counted there."""
    tokens = re.findall(r"\S+\s*", text.strip())
    for digits in (1, 2, 3):
        most = 10**digits - 1
        bodies = _greedy(tokens, limit, measure_text, link, f" {most}/{most}")
        if len(bodies) <= most:
            total = len(bodies)
            return [f"{body} {i}/{total}" for i, body in enumerate(bodies, start=1)]
    raise UsageError("the text is too long even for a thread of 999 posts")


def _greedy(
    tokens: list[str],
    limit: int,
    measure_text: Callable[[str], int],
    link: str | None,
    suffix: str,
) -> list[str]:
    def fits(body: str, first: bool) -> bool:
        sent = f"{body}{suffix}"
        if first and link and link not in body:
            sent = f"{sent}\n{link}"
        return measure_text(sent) <= limit

    bodies: list[str] = []
    current = ""
    pending = list(tokens)
    while pending:
        token = pending.pop(0)
        if not token:
            continue
        candidate = current + token
        if fits(candidate.rstrip(), not bodies):
            current = candidate
            continue
        if current:
            bodies.append(current.rstrip())
            current = ""
            pending.insert(0, token)
            continue
        # one token longer than a whole post: cut it
        cut = len(token)
        while cut > 1 and not fits(token[:cut], not bodies):
            cut -= 1
        bodies.append(token[:cut])
        pending.insert(0, token[cut:])
    if current.strip():
        bodies.append(current.rstrip())
    return bodies
