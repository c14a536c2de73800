"""Configuration: defaults, file, environment overrides, and clear errors for bad input."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from pydantic import BaseModel

from bulletin.archiver.retention import retain_until
from bulletin.config import load_settings
from bulletin.config.accounts import FeedAccountSettings
from bulletin.config.settings import Settings
from bulletin.config.values import parse_duration, parse_period
from bulletin.errors import ConfigError
from bulletin.timeparse import Span


def test_embedded_defaults(tmp_path: Path) -> None:
    """Without a file: SQLite and the archive under ./bulletin-data, one feed account."""
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.source == "built-in defaults"
    assert settings.data_dir == tmp_path / "bulletin-data"
    assert settings.database_url == f"sqlite:///{tmp_path / 'bulletin-data' / 'bulletin.db'}"
    assert settings.archive_path == tmp_path / "bulletin-data" / "archive"
    assert settings.accounts["feed"].platform == "feed"
    assert settings.feed_path("feed") == tmp_path / "bulletin-data" / "feed.xml"
    assert settings.open_mode
    assert {"sandbox-x", "sandbox-facebook"} <= set(settings.accounts)
    assert settings.is_sandbox("sandbox-x") and not settings.is_sandbox("feed")


def test_file_replaces_defaults_and_env_overrides_file(tmp_path: Path) -> None:
    """A file replaces the defaults whole; BULLETIN_SECTION__KEY beats the file."""
    path = tmp_path / "bulletin.toml"
    path.write_text('[paths]\ndata_dir = "d"\n[accounts.web]\nplatform = "feed"\n')
    settings = load_settings(
        environ={"BULLETIN_PATHS__DATA_DIR": "/srv/b", "BULLETIN_ACCOUNTS__WEB__TITLE": "News"},
        cwd=tmp_path,
    )
    assert settings.source == str(path)
    assert list(settings.accounts) == ["web"]  # the default feed account is not merged in
    assert settings.data_dir == Path("/srv/b")
    assert settings.account("web", FeedAccountSettings).title == "News"


def test_database_url_alias_and_precedence(tmp_path: Path) -> None:
    """BULLETIN_DATABASE_URL is an alias; BULLETIN_DATABASE__URL wins when both are set."""
    alias = load_settings(environ={"BULLETIN_DATABASE_URL": "sqlite:///a.db"}, cwd=tmp_path)
    assert alias.database_url == "sqlite:///a.db"
    both = load_settings(
        environ={
            "BULLETIN_DATABASE_URL": "sqlite:///a.db",
            "BULLETIN_DATABASE__URL": "sqlite:///b.db",
        },
        cwd=tmp_path,
    )
    assert both.database_url == "sqlite:///b.db"


def test_unknown_environment_variable_is_a_warning(tmp_path: Path) -> None:
    """A typo in a BULLETIN_ variable is reported, not silently ignored; reserved ones are not."""
    warnings: list[str] = []
    load_settings(
        environ={
            "BULLETIN_DATABSE__URL": "x",
            "BULLETIN_USER": "dana",
            "BULLETIN_TEST_PG_URL": "y",
        },
        cwd=tmp_path,
        warnings=warnings,
    )
    assert len(warnings) == 1
    assert "BULLETIN_DATABSE__URL" in warnings[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[agency\nname = 1", "invalid TOML"),
        ('[agency]\ntime_zone = "Mars/Olympus"\n', "agency.time_zone: unknown time zone"),
        ('[agency]\ncolour = "blue"\n', "agency.colour: unknown key"),
        ('[retention]\ndefault_period = "forever-ish"\n', "retention.default_period:"),
        ('[accounts.pd]\nplatform = "x"\n', "accounts.pd: Value error, a x account needs"),
        ('[accounts.pd]\nplatform = "myspace"\n', "accounts.pd.platform:"),
        ("[sandbox]\nport = 99999\n", "sandbox.port:"),
        ("[archive.s3]\nmax_concurrency = 0\n", "archive.s3.max_concurrency:"),
        ('[agency]\njurisdiction = "ZZ"\n', "agency.jurisdiction: Value error, unknown country"),
        ('[requests]\njurisdiction = "US-QQ"\n', "requests.jurisdiction: Value error, unknown sub"),
    ],
)
def test_bad_file_names_file_key_and_reason(tmp_path: Path, content: str, message: str) -> None:
    """Every kind of bad file fails with the file, the key and the reason on one line."""
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={}, cwd=tmp_path)
    text = str(caught.value)
    assert text.startswith(str(path))
    assert message.replace("Value error, ", "") in text
    assert "\n" not in text


def _time_of_day_settings() -> list[tuple[str, str]]:
    """Every ``*_at`` string setting of every section: the clock times of day."""
    found = []
    for section, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            found += [
                (section, key)
                for key, field in model.model_fields.items()
                if key.endswith("_at") and field.annotation is str
            ]
    return found


@pytest.mark.parametrize("bad", ["3am", "25:00", "03:61", "0330", ""])
def test_time_of_day_settings_are_checked_at_load(tmp_path: Path, bad: str) -> None:
    """A time of day the daemon could not schedule is refused at load, naming file and key."""
    found = _time_of_day_settings()
    assert ("daemon", "verify_at") in found and ("retention", "disposition_at") in found
    for section, key in found:
        path = tmp_path / "bad.toml"
        path.write_text(f'[{section}]\n{key} = "{bad}"\n')
        with pytest.raises(ConfigError) as caught:
            load_settings(path, environ={}, cwd=tmp_path)
        assert str(caught.value) == (
            f"{path}: {section}.{key}: {bad!r} is not a time of day (use 24-hour HH:MM, e.g. 03:30)"
        )
        path.write_text(f'[{section}]\n{key} = "4:05"\n')
        assert getattr(getattr(load_settings(path, environ={}, cwd=tmp_path), section), key)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    """A missing file and a file that is not text are named."""
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(garbage, environ={})


def test_periods() -> None:
    """Periods and durations share one syntax; permanent is None."""
    assert parse_period("7y") == Span(7, "years")
    assert parse_period("6 months") == parse_period("6mo") == Span(6, "months")
    assert parse_period("90d") == Span(90, "days")
    assert parse_period("permanent") is None
    assert parse_duration("30 minutes") == parse_duration("30min") == timedelta(minutes=30)
    assert parse_duration("1d") == timedelta(days=1)
    with pytest.raises(ValueError, match="no fixed length"):
        parse_duration("1mo")


def retained_until(period: str, anchor: datetime) -> datetime:
    """Retain-until of a record captured at ``anchor`` in a series kept for ``period``."""
    settings = Settings.model_validate(
        {"retention": {"series": {"s": {"period": period}}}, "agency": {"time_zone": ZONE}}
    )
    until, permanent = retain_until(settings, "s", posted_at=None, captured_at=anchor)
    assert not permanent
    return until.astimezone(ZoneInfo(ZONE))


ZONE = "America/New_York"


def local_time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(ZONE))


def test_six_months_from_1_july_is_1_january() -> None:
    """Retain-until = anchor + relativedelta(months=6) on the agency's clock: a record
    captured 1 July 10:00 is kept until 1 January 10:00 (past all of 31 December), not 183
    days (31 December)."""
    anchor = local_time("2026-07-01T10:00")
    assert retained_until("6mo", anchor) == anchor + relativedelta(months=6)
    assert retained_until("6mo", anchor) == local_time("2027-01-01T10:00")
    assert retained_until("1y", local_time("2026-03-01T00:30")) == local_time("2027-03-01T00:30")
    assert retained_until("2w", local_time("2026-10-25T09:00")) == local_time("2026-11-08T09:00")


def test_seven_years_from_29_february_end_on_1_march() -> None:
    """A day clamped to the end of a shorter month moves to the first of the next: 29 Feb +
    7y (relativedelta gives 28 Feb) is 1 March, and 31 August + 6mo is 1 March."""
    assert retained_until("7y", local_time("2024-02-29T12:00")) == local_time("2031-03-01T12:00")
    assert retained_until("6mo", local_time("2026-08-31T12:00")) == local_time("2027-03-01T12:00")
    assert retained_until("7y", local_time("2024-02-28T12:00")) == local_time("2031-02-28T12:00")


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("retention", "default_period", "30m"),
        ("publisher", "late_grace", "30m"),
        ("daemon", "routine_give_up", "30m"),
    ],
)
def test_bare_m_is_refused_everywhere(tmp_path: Path, section: str, key: str, value: str) -> None:
    """ "30m" (minutes or months?) is refused in every setting, naming what to write."""
    path = tmp_path / "bulletin.toml"
    path.write_text(f'[{section}]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=rf"{key}.*write 30min for minutes or 30mo for months"):
        load_settings(path, environ={})


def test_a_zero_period_is_refused(tmp_path: Path) -> None:
    """A retention period of "0d" is refused at start with the file and key."""
    path = tmp_path / "bulletin.toml"
    path.write_text('[retention.series.visitor-comments]\nperiod = "0d"\n')
    with pytest.raises(ConfigError, match=r"period.*no time at all"):
        load_settings(path, environ={})


def test_schema_revision_constant_matches_migrations() -> None:
    """db.SCHEMA_REVISION names alembic's newest migration."""
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bulletin.db import SCHEMA_REVISION

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("bulletin") / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_REVISION
