"""The systemd units as shipped: valid for systemd once `bulletin` is installed where their
ExecStart says (docs/operations.md, "As a service")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.plugins.environment import require

DEPLOY = Path(__file__).parent.parent / "deploy"


def test_units_pass_systemd_analyze_verify() -> None:
    """systemd-analyze verify accepts every unit with the command linked into
    /usr/local/bin, as the install step does; the link lives in a private mount namespace,
    so the machine is left as it was."""
    tools = [shutil.which(t) for t in ("systemd-analyze", "unshare")]
    require(os.geteuid() == 0 and all(tools), "root, unshare and systemd-analyze")
    command = Path(sys.executable).parent / "bulletin"
    units = " ".join(str(p) for p in sorted(DEPLOY.glob("bulletin*.[st]*")))
    script = (
        "mount -t tmpfs none /usr/local/bin && "
        f"ln -s {command} /usr/local/bin/bulletin && systemd-analyze verify {units}"
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            found.setdefault(key, []).append(value)
    return found


def test_the_web_unit_runs_the_console_as_the_daemon_does() -> None:
    """bulletin-web.service runs `bulletin web` as the daemon's user, on its configuration
    and data directory, hardened the same way; it does not run `init` itself."""
    daemon = _settings(DEPLOY / "bulletin.service")
    web = _settings(DEPLOY / "bulletin-web.service")
    assert web["ExecStart"] == ["/usr/local/bin/bulletin web"]
    assert "ExecStartPre" not in web
    same = ("User", "Group", "Environment", "StateDirectory", "UMask", "SystemCallFilter")
    for key in (*same, "ProtectSystem", "NoNewPrivileges", "CapabilityBoundingSet"):
        assert web[key] == daemon[key], key
    assert "bulletin.service" in web["After"][0]
