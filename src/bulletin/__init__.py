"""Bulletin: publish a public-safety agency's notices exactly once and keep the public record."""

from __future__ import annotations

__version__ = "0.1.0"
