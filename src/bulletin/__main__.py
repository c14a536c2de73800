"""``python -m bulletin`` runs the command line."""

from __future__ import annotations

from bulletin.cli import main

main()
