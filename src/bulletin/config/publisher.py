"""How notices are written and approved: ``[publisher]``, ``[policy]`` and ``[cap]``."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from bulletin.config.accounts import PLATFORMS
from bulletin.config.values import Section, checked_duration, parse_duration

if TYPE_CHECKING:
    import regex

Priority = Literal["emergency", "advisory", "community"]


DEFAULT_CATEGORIES: dict[str, Priority] = {
    "weather-emergency": "emergency",
    "missing-person": "emergency",
    "endangered-person": "emergency",
    "evacuation": "emergency",
    "shelter-in-place": "emergency",
    "road-closure": "advisory",
    "traffic": "advisory",
    "public-safety-advisory": "advisory",
    "tip-request": "advisory",
    "special-event": "community",
    "crime-prevention": "community",
    "crime-data": "community",
    "community-outreach": "community",
    "recruitment": "community",
    "general": "community",
}


class PlatformCost(Section):
    """Estimated price of creating one post, in US dollars."""

    post: float = Field(default=0.0, ge=0)
    post_with_url: float = Field(default=0.0, ge=0)


class PublisherSettings(Section):
    categories: dict[str, Priority] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    max_text_length: int = Field(default=5000, ge=1)
    past_grace_minutes: int = Field(default=5, ge=0)
    # ``default`` and per-category overrides: how many people other than the author approve.
    approvals: dict[str, int] = Field(default_factory=lambda: {"default": 1})
    # by platform, over the platform's own estimate (its PlatformSpec)
    costs: dict[str, PlatformCost] = Field(default_factory=dict)
    # A routine post this far past its time when a daemon first sees it (the daemon was down)
    # waits for a person (state ``late``); an emergency one goes out at once.
    late_grace: str = "30min"

    _valid_grace = field_validator("late_grace")(checked_duration)

    @property
    def late_grace_delta(self) -> timedelta:
        return parse_duration(self.late_grace)

    @field_validator("costs")
    @classmethod
    def _known_platforms(cls, value: dict[str, PlatformCost]) -> dict[str, PlatformCost]:
        for name in value:
            if name not in PLATFORMS:
                raise ValueError(f"{name!r} is not a platform ({', '.join(PLATFORMS)})")
        return value

    @model_validator(mode="after")
    def _known_approval_keys(self) -> PublisherSettings:
        for key, count in self.approvals.items():
            if key != "default" and key not in self.categories:
                raise ValueError(f"approvals.{key}: not a category (use default or a category)")
            if count < 1:
                raise ValueError(
                    f"approvals.{key}: at least one approval is needed (the department's "
                    "policy); use a pre-approved template for notices that cannot wait"
                )
        return self

    def approvals_needed(self, category: str) -> int:
        """How many approvals a notice of ``category`` needs."""
        return self.approvals.get(category, self.approvals.get("default", 1))


RuleKind = Literal["pattern", "words", "length", "link-required", "alt-text"]


class RuleTranslation(Section):
    """A rule's words and patterns in another language."""

    patterns: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    exceptions: list[str] = Field(default_factory=list)

    @field_validator("patterns", "exceptions")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                compile_pattern(pattern)
            except ValueError as e:
                raise ValueError(f"bad regular expression {pattern!r}: {e}") from e
        return value


class PolicyRule(Section):
    """One content-policy check. ``patterns`` are regular expressions matched without regard
    to case; a match that lies inside a match of one of ``exceptions`` does not count.
    ``words`` match whole words only (with common endings: s, es, ed, ing, er, ers)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    kind: RuleKind = "pattern"
    message: str
    patterns: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    exceptions: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)  # empty: every category
    not_categories: list[str] = Field(default_factory=list)
    severity: Literal["block", "warn"] = "block"
    overridable: bool = True
    link_prefix: str = ""  # link-required: empty means the agency's website
    # pattern and words rules: the language the words and patterns are written in ("": any,
    # such as numbers), and their translations by language tag; a text in a language with
    # neither is not checked by the rule, and a warning says so
    language: str = ""
    translations: dict[str, RuleTranslation] = Field(default_factory=dict)

    @field_validator("patterns", "exceptions")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                compile_pattern(pattern)
            except ValueError as e:
                raise ValueError(f"bad regular expression {pattern!r}: {e}") from e
        return value

    def applies_to(self, category: str) -> bool:
        if self.categories and category not in self.categories:
            return False
        return category not in self.not_categories

    def in_language(self, lang: str) -> PolicyRule | None:
        """This rule as it checks a text in ``lang``: itself (written in that language or in
        none), its translation, or None (it cannot check that language)."""
        if not self.language or lang.split("-")[0] == self.language.split("-")[0]:
            return self
        found = self.translations.get(lang) or self.translations.get(lang.split("-")[0])
        if found is None:
            return None
        return self.model_copy(
            update={
                "patterns": found.patterns,
                "words": found.words,
                "exceptions": found.exceptions,
                "language": lang,
            }
        )


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled as the content policy matches it (case-insensitive, `regex`
    module, version 0). Validating a rule compiles with these same flags, so the `regex`
    module's own cache hands the policy check the compiled pattern; `regex` is imported here,
    by the commands that check or validate rules only.

    :raises ValueError: ``pattern`` is not a valid regular expression.
    """
    import regex

    try:
        return regex.compile(pattern, regex.IGNORECASE | regex.VERSION0)
    except regex.error as e:
        raise ValueError(str(e)) from e


@cache
def shipped_policy_rules() -> tuple[PolicyRule, ...]:
    """The default rule set shipped as ``config/policy.toml``."""
    text = resources.files("bulletin.config").joinpath("policy.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return tuple(PolicyRule.model_validate(rule) for rule in data.get("rules", []))


class PolicySettings(Section):
    """``[policy]``: the shipped rules (unless ``defaults = false``), minus ``disabled``, with
    ``[[policy.rules]]`` added; a rule with a shipped rule's id replaces it."""

    defaults: bool = True
    disabled: list[str] = Field(default_factory=list)
    rules: list[PolicyRule] = Field(default_factory=list)

    def effective_rules(self) -> list[PolicyRule]:
        own = {rule.id: rule for rule in self.rules}
        merged: dict[str, PolicyRule] = {}
        if self.defaults:
            merged.update({rule.id: rule for rule in shipped_policy_rules()})
        merged.update(own)
        return [rule for rule_id, rule in merged.items() if rule_id not in self.disabled]


CapStatus = Literal["Actual", "Exercise", "System", "Test", "Draft"]
CapSeverity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]


class CapSettings(Section):
    """``[cap]``: Common Alerting Protocol 1.2 alerts turned into draft notices.

    ``feeds`` are Atom feeds of CAP entries (api.weather.gov, IPAWS), polled every
    ``poll_interval`` seconds by the daemon. ``events`` (empty: every event) and
    ``ignore_events`` filter by event type; ``areas`` (empty: everywhere) keeps alerts whose
    areaDesc contains one of them or whose geocodes (UGC, SAME/FIPS) equal one of them;
    ``min_severity`` drops milder alerts; only alerts whose status is in ``statuses`` are
    imported. ``categories`` maps an event to a notice category (over the built-in map);
    ``[cap.templates]`` maps an event to an approved template that covers it. With
    ``trust_store`` (a PEM file of certificates) an enveloped XML signature is verified.
    An alert a feed links to is fetched only from the feed's host or ``allowed_hosts``.
    """

    feeds: list[str] = Field(default_factory=list)
    poll_interval: int = Field(default=120, ge=5, description="seconds between feed polls")
    targets: list[str] = Field(default_factory=list)
    actor: str = "cap"
    language: str = "en"
    events: list[str] = Field(default_factory=list)
    ignore_events: list[str] = Field(default_factory=list)
    areas: list[str] = Field(default_factory=list)
    min_severity: CapSeverity = "Unknown"
    statuses: list[CapStatus] = Field(default_factory=lambda: list[CapStatus](["Actual"]))
    categories: dict[str, str] = Field(default_factory=dict)
    templates: dict[str, str] = Field(default_factory=dict)
    trust_store: Path | None = None
    require_signature: bool = False
    max_bytes: int = Field(default=2_000_000, ge=1024)
    fetch_timeout: float = Field(default=15.0, gt=0)
    # hosts an alert linked from a feed may be fetched from, besides the feeds' own hosts
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("feeds")
    @classmethod
    def _feed_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if urlsplit(url).scheme not in ("http", "https", "file"):
                raise ValueError(f"{url!r} is not an http(s) or file URL")
        return value
