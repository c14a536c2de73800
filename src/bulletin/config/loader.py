"""Build :class:`Settings` from a TOML file, ``BULLETIN_*`` environment variables and defaults.

The environment is the mapping passed in (``os.environ`` when none is); models never read it.

Where the file comes from: ``--config PATH``, else ``$BULLETIN_CONFIG``, else ``./bulletin.toml``
when it exists, else the embedded ``defaults.toml``. A file replaces the defaults as a whole.
Environment variables override the file: ``BULLETIN_<SECTION>__<KEY>[__<KEY>...]``;
``BULLETIN_DATABASE_URL`` is an alias of ``BULLETIN_DATABASE__URL``. A list is given as JSON
(``["feed", "x"]``) or comma-separated (``feed,x``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bulletin.config.accounts import FeedAccountSettings
from bulletin.config.settings import Settings
from bulletin.config.timestamp import load_pem_certificates
from bulletin.errors import ConfigError

ENV_PREFIX = "BULLETIN_"
RESERVED = {
    "BULLETIN_CONFIG",
    "BULLETIN_USER",
    "BULLETIN_LOCAL",  # run the command in its own process (bulletin.command_client)
    "BULLETIN_DATABASE_URL",
    "BULLETIN_TRACEMALLOC",  # the daemon's opt-in memory tracing (bulletin.service.memtrace)
    "BULLETIN_TRACEMALLOC_FRAMES",
}
RESERVED_PREFIXES = ("BULLETIN_TEST_",)
# A configuration file is a few kilobytes; anything far larger (or endless, like /dev/zero)
# is not one, and reading it whole would hang or exhaust memory.
MAX_CONFIG_BYTES = 1024 * 1024


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    warnings: list[str] | None = None,
) -> Settings:
    """Load, merge and validate the configuration.

    :param path: an explicit file (``--config``); None to look it up as described above.
    :param environ: the environment to read (defaults to ``os.environ``).
    :param cwd: the directory relative paths are resolved against (defaults to the current one).
    :param warnings: receives one line per unknown ``BULLETIN_*`` variable.
    :raises ConfigError: unreadable or invalid; the message names file, key and reason.
    """
    import os

    env = dict(os.environ if environ is None else environ)
    base = (cwd or Path.cwd()).resolve()
    source, data = _read_source(path, env, base)
    overrides, unknown = _env_overrides(env)
    if warnings is not None:
        warnings.extend(unknown)
    merged = _deep_merge(data, overrides)
    merged["source"] = source
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_describe(source, e)) from None
    resolved = _resolve_paths(settings, base)
    _check_ca_bundles(resolved)
    return resolved


def _check_ca_bundles(settings: Settings) -> None:
    """Each ``[timestamp]`` authority's ``ca_bundle`` holds PEM certificates (checked at start,
    so a wrong path is not found at the first checkpoint)."""
    for number, authority in enumerate(settings.timestamp.authorities):
        try:
            load_pem_certificates(authority.ca_bundle)
        except ValueError as e:
            raise ConfigError(
                f"{settings.source}: timestamp.authorities.{number}.ca_bundle: {e}"
            ) from None


def _read_source(
    path: str | Path | None, env: Mapping[str, str], base: Path
) -> tuple[str, dict[str, Any]]:
    chosen: Path | None = None
    if path is not None:
        chosen = Path(path)
    elif env.get("BULLETIN_CONFIG"):
        chosen = Path(env["BULLETIN_CONFIG"])
    elif (base / "bulletin.toml").is_file():
        chosen = base / "bulletin.toml"
    if chosen is None:
        text = resources.files("bulletin.config").joinpath("defaults.toml").read_text("utf-8")
        return "built-in defaults", tomllib.loads(text)
    if not chosen.is_absolute():
        chosen = base / chosen
    try:
        with chosen.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{chosen}: configuration file not found") from None
    except OSError as e:
        raise ConfigError(f"{chosen}: cannot read configuration file: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{chosen}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a configuration file"
        )
    try:
        return str(chosen), tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{chosen}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{chosen}: invalid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{chosen}: invalid TOML: nested too deeply") from None


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Nested dict from ``BULLETIN_A__B=v`` variables, and warnings for unknown ones."""
    fields = set(Settings.model_fields) - {"source"}
    overrides: dict[str, Any] = {}
    unknown: list[str] = []
    items = sorted(env.items())
    if "BULLETIN_DATABASE_URL" in env and "BULLETIN_DATABASE__URL" not in env:
        items.append(("BULLETIN_DATABASE__URL", env["BULLETIN_DATABASE_URL"]))
    for name, value in items:
        if not name.startswith(ENV_PREFIX) or name in RESERVED:
            continue
        if name.startswith(RESERVED_PREFIXES):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if len(parts) < 2 or parts[0] not in fields or not all(parts):
            unknown.append(
                f"unknown environment variable {name} ignored (expected {ENV_PREFIX}"
                "<SECTION>__<KEY>, e.g. BULLETIN_DATABASE__URL)"
            )
            continue
        node = overrides
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _env_value(value, _is_list(parts))
    return overrides, unknown


def _env_value(value: str, is_list: bool = False) -> Any:
    """Lists and tables may be given as JSON (``["clerk"]``), a list also comma-separated
    (``feed,x``); everything else stays a string."""
    stripped = value.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            return value
    if is_list:
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value


def _is_list(parts: list[str]) -> bool:
    """Whether the setting at ``parts`` (``["cap", "targets"]``) is a list."""
    kind: Any = Settings
    for part in parts:
        kind = _child(kind, part)
    return get_origin(kind) is list


def _child(kind: Any, part: str | int) -> Any:
    """The type of ``part`` inside a value of type ``kind`` (None when unknown): a model's
    field, a table's value (``accounts.NAME``), a list's item, or in a union of models (an
    account) the member ``part`` tags, else the first member that has a field ``part``."""
    if get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        field = kind.model_fields.get(str(part))
        return None if field is None else field.annotation
    if get_origin(kind) is dict:
        return get_args(kind)[1]
    if get_origin(kind) is list:
        return get_args(kind)[0]
    members = [m for m in get_args(kind) if isinstance(m, type) and issubclass(m, BaseModel)]
    for member in members:
        if _tag(member) == part:
            return member
    for member in members:
        if str(part) in member.model_fields:
            return member.model_fields[str(part)].annotation
    return None


def _tag(model: type[BaseModel]) -> object:
    """The value of ``platform`` that selects ``model`` in a union of accounts, or None."""
    field = model.model_fields.get("platform")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return get_args(field.annotation)[0]


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(source: str, error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(_key_path(first["loc"])) or "(top level)"
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = "unknown key"
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # said as of the key that picks the platform, as a plain field would say it
        key += "." + first.get("ctx", {}).get("discriminator", "").strip("'")
        reason = "Field required"
        if first["type"] == "union_tag_invalid":
            tags = [t.strip() for t in first.get("ctx", {}).get("expected_tags", "").split(",")]
            reason = f"Input should be {', '.join(tags[:-1])} or {tags[-1]}"
    more = len(error.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {key}: {reason}{tail}"


def _key_path(loc: tuple[int | str, ...]) -> list[str]:
    """An error's location as the keys of the file: without the platform pydantic puts after
    an account's name (``accounts.pd.x.page_id`` is ``accounts.pd.page_id``)."""
    keys: list[str] = []
    kind: Any = Settings
    for part in loc:
        tagged = _is_tagged(kind)
        kind = _child(kind, part)
        if not tagged:
            keys.append(str(part))
    return keys


def _is_tagged(kind: Any) -> bool:
    """Whether ``kind`` is a union of models told apart by a tag."""
    if get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    return any(
        isinstance(m, type) and issubclass(m, BaseModel) and _tag(m) is not None
        for m in get_args(kind)
    )


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def absolute(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else (base / p)

    data_dir = absolute(settings.paths.data_dir)
    assert data_dir is not None
    accounts = {
        name: acc.model_copy(update={"path": absolute(acc.path)})
        if isinstance(acc, FeedAccountSettings)
        else acc
        for name, acc in settings.accounts.items()
    }
    return settings.model_copy(
        update={
            "paths": settings.paths.model_copy(update={"data_dir": data_dir}),
            "archive": settings.archive.model_copy(
                update={
                    "local": settings.archive.local.model_copy(
                        update={"path": absolute(settings.archive.local.path)}
                    ),
                    "witness": settings.archive.witness.model_copy(
                        update={"file": absolute(settings.archive.witness.file)}
                    ),
                }
            ),
            "sandbox": settings.sandbox.model_copy(
                update={"state_file": absolute(settings.sandbox.state_file)}
            ),
            "accounts": accounts,
            "timestamp": settings.timestamp.model_copy(
                update={
                    "authorities": [
                        a.model_copy(update={"ca_bundle": absolute(a.ca_bundle)})
                        for a in settings.timestamp.authorities
                    ]
                }
            ),
        }
    )
