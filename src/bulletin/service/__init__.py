"""The long-running service beside the doors: the daemon (:mod:`.daemon`), its job table
(:mod:`.jobs`), the waker, status and metrics, backup and restore.

Nothing in the domain (publisher, archiver, cap, connectors) imports this package.
"""
