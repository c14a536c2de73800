"""Searching the archive and reading a thread.

Full text runs on SQLite FTS5 (``records_fts``, migration 0004: new records are added by
:func:`index_new_records`, deletions and updates follow by triggers) or on PostgreSQL's
full-text search (the stored column ``records.search_vector``, generated as
``to_tsvector('simple', text || ' ' || author)``, and its GIN index: migration 0024).
Words are ANDed; ``word*`` matches a prefix. Every version of an item is searchable (text
edited away is still found); a hit is the newest matching version of an item, shown with the
item's current state.

One query language serves ``archive search``, holds, records requests and exports
(:func:`parse_query`, matched by :func:`conditions`): what a search shows is what a hold on the
same query holds.
"""

from __future__ import annotations

from bulletin.archiver.search.conditions import author_is, conditions, index_new_records
from bulletin.archiver.search.find import Hit, Scan, search
from bulletin.archiver.search.query import KINDS, STATES, Query, check_query, parse_query
from bulletin.archiver.search.thread import ThreadItem, thread_of

__all__ = [
    "KINDS",
    "STATES",
    "Hit",
    "Query",
    "Scan",
    "ThreadItem",
    "author_is",
    "check_query",
    "conditions",
    "index_new_records",
    "parse_query",
    "search",
    "thread_of",
]
