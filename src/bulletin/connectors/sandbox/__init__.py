"""A local HTTP server speaking the subset of the X API v2 and the Graph API Bulletin uses,
with fault injection; used by tests, demos and staff training."""

from __future__ import annotations

from bulletin.connectors.sandbox.server import SandboxServer, serve
from bulletin.connectors.sandbox.state import DEFAULT_FB_PAGE, DEFAULT_X_ACCOUNT, SANDBOX_ENV

__all__ = ["DEFAULT_FB_PAGE", "DEFAULT_X_ACCOUNT", "SANDBOX_ENV", "SandboxServer", "serve"]
