"""Backing up SafeGrid's database to files, restoring it, and proving the restore works.

A backup is a directory: one `<collection>.bson` per collection (its documents as stored,
in `_id` order, byte for byte) and `manifest.json` with each file's document count,
SHA-256 and indexes, and the ids of the data keys its sealed values need. It is made
with the driver alone, so it works where `mongodump` is not installed and against the
embedded store; on a MongoDB replica set, `mongodump --oplog` from a secondary gives a
point-in-time copy instead (docs/operations.md).

`restore` refuses a damaged backup (a hash that does not match) and a database that
already holds documents. `verify` compares a restored database with its manifest:
counts, indexes, and that sealed personal data still opens with the keys configured,
which is what a restore drill must show (a backup whose keys are lost is no backup).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson
import mongoengine as me
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database

from gateway.privacy.crypto import DecryptError, is_encrypted, keyring

MANIFEST = "manifest.json"
FORMAT = 1
BATCH = 1000
RAW = CodecOptions(document_class=RawBSONDocument)
# The key id inside a sealed token (gateway/privacy/crypto.py): `sg1:<kid>:...`.
_KID = re.compile(rb"sg1:([A-Za-z0-9_.-]{1,32}):")
# Index options that describe the server's copy, not the index: not given back on restore.
_NOT_OPTIONS = {"key", "v", "ns", "background"}


class BackupError(RuntimeError):
    """A backup cannot be made or restored (the message says which file or collection)."""


@dataclass
class Verification:
    """What a restored database showed against its manifest."""

    collections: int = 0
    documents: int = 0
    indexes: int = 0
    unsealed: int = 0  # sealed values opened with the configured keys
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _collections(db: Database[Any]) -> list[str]:
    return sorted(n for n in db.list_collection_names() if not n.startswith("system."))


def _indexes(db: Database[Any], name: str) -> list[dict[str, Any]]:
    found = []
    for index_name, info in sorted(db[name].index_information().items()):
        if index_name == "_id_":
            continue
        options = {k: v for k, v in info.items() if k not in _NOT_OPTIONS}
        found.append({"name": index_name, "key": [[k, v] for k, v in info["key"]],
                      "options": options})
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(db: Database[Any], directory: Path) -> dict[str, Any]:
    """Write every collection of `db` and the manifest into `directory` (new or empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: a backup goes into a new directory")
    collections: dict[str, Any] = {}
    kids: set[str] = set()
    for name in _collections(db):
        path = directory / f"{name}.bson"
        count = 0
        with path.open("wb") as out:
            for doc in db.get_collection(name, codec_options=RAW).find({}, sort=[("_id", 1)]):
                raw = doc.raw
                out.write(raw)
                kids.update(m.decode() for m in _KID.findall(raw))
                count += 1
        collections[name] = {"file": path.name, "count": count, "sha256": _sha256(path),
                             "indexes": _indexes(db, name)}
    manifest = {
        "format": FORMAT, "database": db.name,
        "created_at": datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(),
        # A restore needs these data keys in SAFEGRID_DATA_KEYS: keep them as long as the backup.
        "data_key_ids": sorted(kids),
        "collections": collections,
    }
    # Written last: a directory without a manifest is an unfinished backup.
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path} is missing: not a backup, or an unfinished one")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: backup format {manifest.get('format')!r}, "
                          f"this SafeGrid reads {FORMAT}")
    return manifest


def check_files(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Every file is there with its recorded hash (before anything is written)."""
    for name, entry in manifest["collections"].items():
        path = directory / entry["file"]
        if not path.is_file():
            raise BackupError(f"{path} is missing (collection {name})")
        if _sha256(path) != entry["sha256"]:
            raise BackupError(f"{path} does not match its SHA-256 in the manifest: damaged "
                              "or altered, not restored")


def restore(db: Database[Any], directory: Path) -> dict[str, Any]:
    """Load a backup into `db`, which must hold no documents; then build its indexes."""
    manifest = read_manifest(directory)
    check_files(directory, manifest)
    filled = [n for n in _collections(db) if db[n].estimated_document_count()]
    if filled:
        raise BackupError(f"database {db.name} already holds documents ({', '.join(filled)}): "
                          "restore into a new database")
    for name, entry in manifest["collections"].items():
        collection = db[name]
        with (directory / entry["file"]).open("rb") as f:
            batch: list[RawBSONDocument] = []
            for doc in bson.decode_file_iter(f, codec_options=RAW):
                batch.append(doc)
                if len(batch) >= BATCH:
                    collection.insert_many(batch, ordered=True)
                    batch = []
            if batch:
                collection.insert_many(batch, ordered=True)
        if not entry["count"] and name not in db.list_collection_names():
            db.create_collection(name)
        for index in entry["indexes"]:
            collection.create_index([(k, v) for k, v in index["key"]], name=index["name"],
                                    **index["options"])
    return manifest


def _values(doc: Any, path: str) -> Iterator[Any]:
    """The values at a sealed path (`a.b`, or `notes[].text` for each element of a list)."""
    array, is_list, rest = path.partition("[].")
    if is_list:
        for item in _values(doc, array):
            for element in item if isinstance(item, list) else ():
                yield from _values(element, rest)
        return
    value = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return
        value = value[part]
    yield value


def verify(db: Database[Any], manifest: Mapping[str, Any],
           sealed: Mapping[type[me.Document], Mapping[str, str]],
           sample: int = 1000) -> Verification:
    """Counts and indexes as the manifest says, and sealed values that open.

    Up to `sample` documents per sealed collection are opened with the configured keys
    (each with its field's context); one that does not open is a problem, named by
    collection, `_id` and path, never by its content.
    """
    result = Verification()
    for name, entry in manifest["collections"].items():
        result.collections += 1
        count = db[name].count_documents({})
        result.documents += count
        if count != entry["count"]:
            result.problems.append(f"{name}: {count} documents, the backup has {entry['count']}")
        present = {i["name"]: i for i in _indexes(db, name)}
        for index in entry["indexes"]:
            got = present.get(index["name"])
            if got is None or got["key"] != index["key"]:
                result.problems.append(f"{name}: index {index['name']} missing or different")
            else:
                result.indexes += 1
    ring = keyring()
    for cls, paths in sealed.items():
        name = cls._get_collection_name()
        if name not in manifest["collections"]:
            continue
        for doc in db[name].find({}, limit=sample):
            for path, context in paths.items():
                for value in _values(doc, path):
                    if not is_encrypted(value):
                        continue
                    try:
                        ring.decrypt(value, context=context)
                    except DecryptError as exc:
                        result.problems.append(f"{name} {doc['_id']} {path}: does not open "
                                               f"({type(exc).__name__})")
                    else:
                        result.unsealed += 1
    return result
