"""Outbound webhooks: endpoints (:mod:`.registry`), signed bodies (:mod:`.body`) and the
sender that posts the outbox's due deliveries with retries (:mod:`.send`). The events
themselves are recorded by the domain through :mod:`bulletin.events`; this package knows
nothing of notices, the archive or CAP beyond the payloads it is handed.
"""
