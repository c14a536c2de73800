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
