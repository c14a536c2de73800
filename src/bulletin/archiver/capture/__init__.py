"""Capture: every post of an account and every comment and reply on them, archived.

A sweep (:mod:`.sweep`) lists an account's new posts, which become threads (:mod:`.threads`),
and the threads whose turn it is (:mod:`.schedule`); what it sees becomes new versions, and
what a complete listing no longer shows becomes a deleted version (:mod:`.versioning`); what it
reads is priced against the account's monthly budget (:mod:`.spend`).

Unusable answers are quarantined (see :mod:`bulletin.archiver.quarantine`) as unknown, never
as gone: an item quarantined in a listing counts as seen, and the sweep ends ``partial``, not
``ok``. An expired token stops this account's sweep, is logged as an error and shown in
``archive status``, and never touches other accounts.
"""
