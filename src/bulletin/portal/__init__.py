"""Door 3: the public archive portal, read-only, no sign-in (see :mod:`bulletin.portal.app`).

Residents search and browse the public record themselves; every page is also JSON
(``?format=json``), every record has a proof that :mod:`bulletin.portal.verify_proof` checks
with the standard library alone. This package's ``__init__`` imports nothing, so that the
verifier runs anywhere.
"""
