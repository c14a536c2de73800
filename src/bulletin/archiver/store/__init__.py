"""WORM stores: the interface in :mod:`.base`, implementations beside it."""
