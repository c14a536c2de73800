"""Email to people: ``[notify]`` (the SMTP server, who is told what, and when)."""

from __future__ import annotations

import re
from datetime import time, timedelta

from pydantic import Field, field_validator, model_validator

from bulletin.config.secrets import is_variable_name
from bulletin.config.values import Section, checked_duration, parse_duration, time_of_day

_QUIET = re.compile(r"^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")


def _clock_time(text: str) -> time:
    hour, minute = (int(x) for x in time_of_day(text).split(":"))
    return time(hour, minute)


class NotifySettings(Section):
    """Who is emailed when. Empty ``smtp_host``: nobody is emailed (messages wait in the
    outbox; once a server is configured, those older than a day are skipped, not sent late).
    An account's ``token_expires`` (a date) has the administrators warned 14 and 3 days
    before its token expires (:mod:`bulletin.notify.token_expiry`)."""

    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # STARTTLS before AUTH (recommended; the server's certificate is verified)
    starttls: bool = True
    # a PEM file of certificate authorities to trust besides the system's (a private CA)
    ca_file: str = ""
    username: str = ""
    # the variable (or $CREDENTIALS_DIRECTORY file) holding the SMTP password
    password_env: str = ""
    sender: str = ""
    # addresses: approvers on call, the next list for an emergency not approved in time,
    # administrators; accounts with an email address and the matching role are added
    approvers: list[str] = Field(default_factory=list)
    escalate_to: list[str] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
    # extra approvers per category slug (told with the approvers)
    categories: dict[str, list[str]] = Field(default_factory=dict)
    # an emergency notice still waiting this long escalates once to escalate_to
    escalate_after: str = "5min"
    # "22:00-07:00" in the agency's time zone: approval mail for community notices waits
    # until it ends (never for emergencies or advisories); empty: no quiet hours
    quiet_hours: str = ""
    # administrators' messages: the same subject is sent once per dedup_window; with
    # digest = true they are gathered into one message a day at digest_at
    dedup_window: str = "1h"
    digest: bool = False
    digest_at: str = "08:00"
    # how long an approval link in a message stays usable (once)
    link_ttl: str = "24h"
    # the variable holding the key that signs approval links; empty: a random key kept in
    # the database (shared by every process on it)
    link_secret_env: str = ""

    _durations = field_validator("escalate_after", "dedup_window", "link_ttl")(checked_duration)
    _times = field_validator("digest_at")(time_of_day)

    @field_validator("password_env", "link_secret_env")
    @classmethod
    def _variable(cls, value: str) -> str:
        if value and not is_variable_name(value):
            raise ValueError("give the name of an environment variable, not the secret itself")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str) -> str:
        if not value:
            return value
        found = _QUIET.match(value)
        if found is None:
            raise ValueError('give "HH:MM-HH:MM" (e.g. "22:00-07:00") or leave it empty')
        _clock_time(found.group(1))
        _clock_time(found.group(2))
        return value

    @model_validator(mode="after")
    def _sender(self) -> NotifySettings:
        if self.smtp_host and not self.sender:
            raise ValueError("sender: give the From address of notifications")
        if self.username and not self.password_env:
            raise ValueError("password_env: name the variable that holds the SMTP password")
        return self

    @property
    def enabled(self) -> bool:
        """Whether an SMTP server is configured."""
        return bool(self.smtp_host)

    @property
    def quiet(self) -> tuple[time, time] | None:
        """The quiet hours as (start, end) local times, or None."""
        found = _QUIET.match(self.quiet_hours) if self.quiet_hours else None
        if found is None:
            return None
        return _clock_time(found.group(1)), _clock_time(found.group(2))

    @property
    def escalate_delta(self) -> timedelta:
        return parse_duration(self.escalate_after)

    @property
    def dedup_delta(self) -> timedelta:
        return parse_duration(self.dedup_window)

    @property
    def link_ttl_delta(self) -> timedelta:
        return parse_duration(self.link_ttl)
