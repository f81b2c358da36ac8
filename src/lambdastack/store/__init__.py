"""Metadata storage (functions, versions, aliases) and code blobs by SHA-256."""

from lambdastack.store.base import Reader, Store, Transaction
from lambdastack.store.blobs import BlobStore
from lambdastack.store.records import LATEST, AliasRecord, FunctionRecord, VersionRecord
from lambdastack.store.sqlite import SqliteStore

__all__ = [
    "LATEST",
    "AliasRecord",
    "BlobStore",
    "FunctionRecord",
    "Reader",
    "SqliteStore",
    "Store",
    "Transaction",
    "VersionRecord",
]
