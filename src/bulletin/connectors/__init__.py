"""Platform connectors: one module per platform behind the interface in :mod:`.base`."""
