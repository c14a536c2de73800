"""WORM stores: the interface in :mod:`.base`, implementations beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bulletin.archiver.store.base import ObjectInfo, PutResult, WormStore

if TYPE_CHECKING:
    from bulletin.config.settings import Settings

__all__ = ["ObjectInfo", "PutResult", "WormStore", "open_store"]


def open_store(settings: Settings) -> WormStore:
    """The store ``settings.archive`` names: the local directory store or S3 Object Lock.

    :raises StoreUnavailable: the store cannot be reached or written.
    :raises ConfigError: the S3 settings are incomplete or the bucket has no Object Lock.
    """
    if settings.archive.store == "s3":
        from bulletin.archiver.store.s3 import S3Store
        from bulletin.archiver.store.spool import SpooledStore

        s3 = settings.archive.s3
        return SpooledStore(lambda: S3Store.from_settings(s3), settings.data_dir / "spool")
    from bulletin.archiver.store.local import LocalStore

    return LocalStore(settings.archive_path)
