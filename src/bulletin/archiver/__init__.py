"""The record keeper: WORM storage, the ledger, capture, retention and export."""
