"""Notices, approval, scheduling and delivery to every target account."""
