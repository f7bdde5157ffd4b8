"""Updates shaped for the store: single-document updates that hand back the document in
two steps the store indexes, and bulk writes in pieces.

A `findAndModify` (pymongo's `find_one_and_update`) is one round trip on MongoDB, but
SecantusDB — the embedded default and the tests' store — answers it by scanning the
whole collection, even for an `_id` equality (254 ms at 20,000 dispatches against about
a millisecond for an update and a read by `_id`; docs/performance.md). Where the
document is updated by `_id`, `update_then_read` updates it with the same guard and then
reads it by `_id`: one round trip more, none of them a scan. The read may see a later
change than this one (another update landing in between); every caller here only reads
fields its own update set or that do not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

WriteOp = InsertOne[Any] | UpdateOne
DUPLICATE_KEY = 11000


def update_then_read(collection: Collection[Any], query: Mapping[str, Any],
                     update: Mapping[str, Any]) -> dict[str, Any] | None:
    """Apply `update` to the one document `query` (which names its `_id`) matches, and
    return it as it is afterwards; None when nothing matched (the guard failed)."""
    if "_id" not in query:
        raise ValueError("update_then_read needs the document's _id in the query")
    if not collection.update_one(dict(query), dict(update)).matched_count:
        return None
    return collection.find_one({"_id": query["_id"]})


# Writes per command in a route batch's bulk writes. SecantusDB holds a collection's
# write lock for a whole command (200 report updates: 0.4 s alone, seconds in a flood),
# and a critical report routed meanwhile waits behind it at each of its own writes; in
# pieces of this size it waits for one piece at most (docs/performance.md, "Flood").
BULK_PIECE = 50


def bulk_in_pieces(collection: Collection[Any], ops: Sequence[WriteOp], *,
                   duplicates_ok: bool = False) -> tuple[int, dict[int, Any]]:
    """An unordered bulk write of `ops`, BULK_PIECE at a time: (documents modified, the
    ids upserted by the index of their op in `ops`).

    `duplicates_ok`: an op refused by a unique index (a concurrent run wrote that
    document first) is not an error; any other error raises.
    """
    modified, upserted = 0, dict[int, Any]()
    for start in range(0, len(ops), BULK_PIECE):
        try:
            result = collection.bulk_write(list(ops[start:start + BULK_PIECE]), ordered=False)
            done, made = result.modified_count, result.upserted_ids or {}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not duplicates_ok or any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            done = exc.details.get("nModified", 0)
            made = {u["index"]: u["_id"] for u in exc.details.get("upserted", [])}
        modified += done
        upserted.update({start + i: made_id for i, made_id in made.items()})
    return modified, upserted
