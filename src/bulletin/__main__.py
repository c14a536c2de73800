"""``python -m bulletin`` runs the command line (through the daemon when it serves the command:
see :mod:`bulletin.command_client`)."""

from __future__ import annotations

from bulletin.command_client import main

main()
