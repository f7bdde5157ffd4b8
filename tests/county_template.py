"""The sample county for tests: built for real once, then restored from its raw documents.

`sample.build()` costs ~0.3 s on a quiet SecantusDB (an scrypt hash and ~130
single-document writes) and up to ~9 s late in a full run: SecantusDB keeps a
record of every retryable write for 30 minutes and, on each write, scans all
of them and, past 10,000, sorts them (`_prune_retryable_locked` in
secantus/transactions.py), so a run's writes slow each other down. Restoring
is one `insert_many` per collection.

The first test that asks for the county (per distinct settings) runs the real
`sample.build()` in its own fresh database; the documents it wrote are kept as
raw BSON, byte for byte, in natural order. Later tests get them inserted into
*their* fresh database, still made by the `app` fixture (create_app per test,
so every process cache is reset as in production). Any doubt, and the real
build runs instead: settings that differ in anything but where the stores and
outside services are get their own template, and a database that is not
exactly as the `app` fixture leaves it (other collections, or any document in
it) gets a real build.

The county's tokens, password and ids are therefore the same in every test;
each test still has its own database, so revoking, locking or deleting in one
test is gone in the next.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel
from pymongo.database import Database

from gateway import sample
from gateway.sample import SampleCounty
from gateway.settings import Settings

RAW = CodecOptions(document_class=RawBSONDocument)


@dataclass(frozen=True)
class Template:
    """What `sample.build()` wrote into a database the `app` fixture had just made."""

    collections_before: tuple[str, ...]
    documents: dict[str, list[RawBSONDocument]]
    # Indexes of collections that build() created itself (not made by ensure_indexes).
    new_indexes: dict[str, list[IndexModel]]
    county: SampleCounty


_templates: dict[tuple[tuple[str, str], ...], Template] = {}


# Where other services listen: build() does not call them, and tests give each its
# own port (the `sendsms` recorder), which would otherwise mean a build per test.
_ADDRESSES = ("mongodb_uri", "redis_url", "kannel_sendsms_url", "geocoder_url")


def _key(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Every other setting (repr per field, so `repr=False` ones such as the data keys count)."""
    server = urlsplit(settings.mongodb_uri)._replace(path="").geturl()  # not the database name
    return (("mongodb server", server), *((f.name, repr(getattr(settings, f.name)))
            for f in dataclasses.fields(settings) if f.name not in _ADDRESSES))


def _empty(db: Database[Any], names: list[str]) -> bool:
    return all(db[name].find_one({}, {"_id": 1}) is None for name in names)


def _index_models(db: Database[Any], name: str) -> list[IndexModel]:
    models = []
    for spec in db[name].list_indexes():
        spec = dict(spec)
        if spec["name"] == "_id_":
            continue
        keys = list(spec.pop("key").items())
        for meta in ("v", "ns"):
            spec.pop(meta, None)
        models.append(IndexModel(keys, **spec))
    return models


def _capture(db: Database[Any], before: list[str], county: SampleCounty) -> Template:
    documents, new_indexes = {}, {}
    for name in sorted(db.list_collection_names()):
        docs = list(db.get_collection(name, codec_options=RAW).find())
        if docs:
            documents[name] = docs
        if name not in before:
            new_indexes[name] = _index_models(db, name)
    return Template(tuple(before), documents, new_indexes, copy.deepcopy(county))


def _restore(db: Database[Any], template: Template) -> SampleCounty:
    for name, models in template.new_indexes.items():
        if models:
            db[name].create_indexes(models)
        else:
            db.create_collection(name)
    for name, docs in template.documents.items():
        db[name].insert_many(docs)
    return copy.deepcopy(template.county)


def load_county(db: Database[Any], settings: Settings) -> SampleCounty:
    """The sample county in `db` (the current app's database, as the app fixture left it)."""
    before = sorted(db.list_collection_names())
    if not _empty(db, before):
        return sample.build()  # something wrote first: build on top of it, as before
    key = _key(settings)
    template = _templates.get(key)
    if template is not None and list(template.collections_before) == before:
        return _restore(db, template)
    built = sample.build()
    if template is None:
        _templates[key] = _capture(db, before, built)
    return built
