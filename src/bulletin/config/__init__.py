"""Configuration: one typed settings model (:mod:`.settings`) built once by :mod:`.loader`."""

from __future__ import annotations

from bulletin.config.accounts import AccountSettings
from bulletin.config.loader import load_settings
from bulletin.config.settings import Settings

__all__ = ["AccountSettings", "Settings", "load_settings"]
