"""The progress journal of an export in ``<out>.partial/``.

``plan.tsv`` freezes the production when it starts: one line per record in Bates order
(``record id``, first and last position of its thread family). ``journal.json`` holds the
scope and, after every chunk, a checkpoint: how many records are done, the size of every file
written by appending, and the running counts. It is replaced atomically
(:func:`bulletin.files.write_atomically`), so an interruption at any instant leaves the
previous checkpoint; a resumed export cuts the appended files back to their checkpointed sizes
and continues after the last record done. Files written per record are simply written again.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bulletin.files import write_atomically

JOURNAL = "journal.json"
PLAN = "plan.tsv"
BAG = "bag"
FORMAT = "bulletin.export-journal/1"


@dataclass
class Journal:
    """The state of one export; see the module doc."""

    scope: dict[str, Any]  # what was asked: request or query, prefix, start, zip
    started_at: str
    actor: str
    total: int = 0
    planned: bool = False
    head_seq: int = 0
    head_hash: str = ""
    done: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # appended file -> bytes at checkpoint
    payload_files: int = 0  # files listed in the manifest part so far
    payload_bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    disposed: int = 0
    resumed: list[str] = field(default_factory=list)
    format: str = FORMAT
    # names this export in the register of Bates numbers; the first number it was issued
    run: str = field(default_factory=lambda: secrets.token_hex(8))
    bates_first: int | None = None

    def save(self, directory: Path) -> None:
        write(directory, self.encoded())

    def encoded(self) -> bytes:
        """What :meth:`save` writes, as the journal stands now."""
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def load(cls, directory: Path) -> Journal | None:
        try:
            body = json.loads((directory / JOURNAL).read_bytes())
        except FileNotFoundError:
            return None
        if body.get("format") != FORMAT:
            return None
        return cls(**body)


def write(directory: Path, encoded: bytes) -> None:
    """Replace the journal in ``directory`` with ``encoded`` (:meth:`Journal.encoded`),
    durably."""
    write_atomically(directory / JOURNAL, encoded)
