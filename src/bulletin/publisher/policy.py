"""Content-policy checks from the department's social-media policy.

The rules live in configuration (``[policy]``, shipped defaults in ``config/policy.toml``).
They run when a notice is approved (or drafted from a template) and again right before each
delivery is published. A blocking finding stops a notice unless an approver overrode that
rule with a reason; a warning is shown and recorded, never blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import regex

from bulletin.config.publisher import PolicyRule, compile_pattern
from bulletin.config.settings import Settings
from bulletin.publisher.texts import TargetText, has_url

_FLAGS = regex.IGNORECASE | regex.VERSION0
# A configured pattern may backtrack catastrophically (``(a|aa)+$``); no notice waits longer
# than this for one rule. The `regex` module checks the limit as it matches.
MATCH_TIMEOUT_SECONDS = 1.0
_ENDINGS = "(?:s|es|ed|ing|er|ers)?"


@dataclass(frozen=True)
class Finding:
    """One rule a notice breaks, with what in it breaks the rule."""

    rule: str
    severity: str
    message: str
    excerpt: str = ""
    overridable: bool = True

    def line(self) -> str:
        where = f": “{self.excerpt}”" if self.excerpt else ""
        return f"{self.rule} ({self.severity}): {self.message}{where}"

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "excerpt": self.excerpt,
            "overridable": self.overridable,
        }


@dataclass(frozen=True)
class Subject:
    """What the rules look at."""

    category: str
    targets: Sequence[TargetText]
    link: str | None = None
    images: Sequence[dict[str, str]] = ()
    lang: str = ""  # the primary's language (a target's ``lang`` "" is in it); "": unknown


def check(settings: Settings, subject: Subject) -> list[Finding]:
    """Every finding of every configured rule that applies to the subject's category."""
    found: list[Finding] = []
    for rule in settings.policy.effective_rules():
        if rule.applies_to(subject.category):
            found.extend(_check_rule(rule, subject, settings))
    return found


def blocking(findings: Iterable[Finding], overridden: Iterable[str] = ()) -> list[Finding]:
    """The findings that stop a notice: blocking and not overridden."""
    skip = set(overridden)
    return [f for f in findings if f.severity == "block" and not (f.overridable and f.rule in skip)]


def rule_ids(settings: Settings) -> dict[str, PolicyRule]:
    return {rule.id: rule for rule in settings.policy.effective_rules()}


def _check_rule(rule: PolicyRule, subject: Subject, settings: Settings) -> list[Finding]:
    def finding(excerpt: str = "", message: str | None = None) -> Finding:
        return Finding(
            rule.id, rule.severity, message or rule.message, excerpt.strip(), rule.overridable
        )

    if rule.kind == "length":
        return [finding(message=t.too_long()) for t in subject.targets if not t.fits]
    if rule.kind == "alt-text":
        missing = [
            i.get("name") or i.get("path", "")
            for i in subject.images
            if not i.get("alt", "").strip()
        ]
        return [finding(path) for path in missing]
    if rule.kind == "link-required":
        prefix = rule.link_prefix or settings.agency.website
        candidates = [subject.link or ""] + [
            url for t in subject.targets for url in re.findall(r"https?://\S+", t.text)
        ]
        if any(_under(url, prefix) for url in candidates if url):
            return []
        return [finding(message=f"{rule.message}: {prefix or 'any link'}")]
    by_lang: dict[str, list[str]] = {}
    for t in subject.targets:
        by_lang.setdefault(t.lang or subject.lang, []).append(t.text)
    found: list[Finding] = []
    for lang, texts in by_lang.items():
        applied = rule.in_language(lang) if lang else rule
        if applied is None:
            found.append(
                Finding(
                    rule.id,
                    "warn",
                    f"{rule.message}: this rule is {rule.language}-only (no {lang} "
                    f"translation in [policy]); the {lang} text was not checked by it",
                    overridable=rule.overridable,
                )
            )
            continue
        found.extend(_check_texts(applied, list(dict.fromkeys(texts)), finding, settings))
    return found


def _check_texts(
    rule: PolicyRule,
    texts: list[str],
    finding: Callable[[str, str | None], Finding],
    settings: Settings,
) -> list[Finding]:
    for text in texts:
        try:
            excerpt = first_match(rule, text)
        except TimeoutError:
            return [
                finding(
                    "",
                    f"{rule.message}: the rule's pattern took over "
                    f"{MATCH_TIMEOUT_SECONDS:g} s on this text and was stopped (simplify it in "
                    f"[policy] of {settings.source})",
                )
            ]
        if excerpt is not None:
            return [finding(excerpt, None)]
    return []


def first_match(rule: PolicyRule, text: str) -> str | None:
    """The first part of ``text`` that breaks ``rule`` (ignoring exceptions), or None.

    :raises TimeoutError: a pattern took over :data:`MATCH_TIMEOUT_SECONDS`.
    """
    exempt = [
        m.span()
        for p in _compiled(tuple(rule.exceptions))
        for m in p.finditer(text, timeout=MATCH_TIMEOUT_SECONDS)
    ]
    for pattern in _compiled(tuple(rule.patterns)) + _word_patterns(tuple(rule.words)):
        for match in pattern.finditer(text, timeout=MATCH_TIMEOUT_SECONDS):
            start, end = match.span()
            if not any(a <= start and end <= b for a, b in exempt):
                return str(match.group(0))
    return None


@cache
def _compiled(patterns: tuple[str, ...]) -> tuple[regex.Pattern[str], ...]:
    return tuple(compile_pattern(p) for p in patterns)


@cache
def _word_patterns(words: tuple[str, ...]) -> tuple[regex.Pattern[str], ...]:
    """Whole words only: ``cunt`` never matches inside ``Scunthorpe``."""
    if not words:
        return ()
    alternatives = "|".join(regex.escape(w) for w in sorted(words, key=len, reverse=True))
    return (regex.compile(rf"(?<![\w-])(?:{alternatives}){_ENDINGS}(?![\w-])", _FLAGS),)


def _under(url: str, prefix: str) -> bool:
    if not prefix:
        return has_url(url)

    def norm(value: str) -> str:
        parts = urlsplit(value if "://" in value else f"https://{value}")
        host = parts.netloc.lower().removeprefix("www.")
        return f"{host}{parts.path.rstrip('/')}"

    return norm(url).startswith(norm(prefix))
