"""Files follow no umask of the operator's: the records, store, spool and productions are never
readable by other accounts of the host; the public feed stays readable by a web server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import bulletin
from tests.plugins.bulletin_app import write_config
from tests.test_media import png


def bulletin_cli(config: Path, *args: str) -> str:
    """``bulletin ARGS`` as a separate process started with the common umask 022; its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env.update(BULLETIN_CONFIG=str(config), PYTHONPATH=str(Path(bulletin.__file__).parent.parent))
    code = "from bulletin.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        umask=0o022,
    )
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def modes(root: Path) -> dict[str, int]:
    """The permission bits of ``root`` and of everything under it, by relative path."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in paths}


def test_records_and_productions_are_private_the_feed_public(tmp_path: Path) -> None:
    """Under umask 022, nothing under the data directory or a production is readable by others,
    productions are 0600/0700, and the feed and its images are 0644/0755."""
    data, www = tmp_path / "data", tmp_path / "www"
    feed = www / "feed" / "notices.xml"
    config = write_config(
        tmp_path / "bulletin.toml", data, f"sqlite:///{data}/bulletin.db", f'path = "{feed}"\n'
    )
    image = tmp_path / "photo.png"
    image.write_bytes(png("the station"))
    bulletin_cli(config, "init")
    bulletin_cli(
        config,
        "notice", "add", "--category", "general", "--text", "Open house Saturday.",
        "--target", "feed", "--image", str(image), "--alt", "the station",
        "--as", "dispatcher1",
    )  # fmt: skip
    bulletin_cli(config, "notice", "approve", "1", "--by", "approver1")
    bulletin_cli(config, "daemon", "--once")
    counsel, bundle = tmp_path / "counsel", tmp_path / "public.zip"
    export = ("export", "--query", "account:feed", "--as", "clerk1")
    bulletin_cli(config, *export, "--counsel", "--out", str(counsel))
    bulletin_cli(config, *export, "--zip", "--out", str(bundle))

    stored = modes(data)
    assert "bulletin.db" in stored
    assert {name: mode for name, mode in stored.items() if mode & 0o007} == {}
    production = modes(counsel)
    assert "data" in production and len(production) > 10
    assert {
        name: mode
        for name, mode in production.items()
        if mode != (0o700 if (counsel / name).is_dir() else 0o600)
    } == {}
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    public = {name: mode for name, mode in modes(www).items() if not name.endswith(".lock")}
    assert public["feed/notices.xml"] == 0o644 and any("/media/" in name for name in public)
    assert {n: m for n, m in public.items() if m != (0o755 if (www / n).is_dir() else 0o644)} == {}
