"""CAP 1.2 alerts into notices: parsing and validation (``document``), signatures, the
mapping onto a notice, the ``cap_alerts`` table, the importer and polled feeds."""
