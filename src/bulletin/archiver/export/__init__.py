"""E-discovery and public-records productions: a BagIt bag with natives, extracted text,
Concordance and CSV load files, Bates numbers, a records manifest with ledger positions and a
chain-of-custody report; and the check of such a bag anywhere.

- :mod:`.scope`: which records, in which (Bates) order
- :mod:`.exporter`: writing the bag, streamed and resumable, in steps over one :mod:`.job`:
  :mod:`.plan`, :mod:`.natives`, :mod:`.records`, :mod:`.threads`, :mod:`.finish`
- :mod:`.verify`: checking a bag, with or without the archive
- :mod:`.render`: the pages (Jinja2 templates in ``templates/``) fed by :mod:`.pages`
- :mod:`.layout`, :mod:`.loadfile`, :mod:`.bates`, :mod:`.bagwriter`, :mod:`.journal`
"""

from __future__ import annotations

from bulletin.archiver.export.exporter import ExportResult, export_bundle, partial_dir
from bulletin.archiver.export.scope import Scope, resolve
from bulletin.archiver.export.verify import BundleReport, verify_bundle

__all__ = [
    "BundleReport",
    "ExportResult",
    "Scope",
    "export_bundle",
    "partial_dir",
    "resolve",
    "verify_bundle",
]
