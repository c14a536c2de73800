"""The application layer: one function per user action, taking an authenticated
:class:`~bulletin.app.actor.Actor` and typed arguments, returning typed results and raising the
project's errors (messages that name no command-line flag). Every door (the command line, the
web console, the HTTP API) calls it; no door holds a rule of its own.

:class:`App` is the context those functions run in: settings, clock, database, store and
connectors, built once and passed down. Importing this package hooks the outbox
(:mod:`bulletin.app.outbox`) into every database session: the one way the daemon is woken.
"""

from __future__ import annotations

from bulletin.app import outbox
from bulletin.app.actor import Actor
from bulletin.app.context import App

outbox.install()

__all__ = ["Actor", "App"]
