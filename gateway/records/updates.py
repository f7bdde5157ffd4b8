"""Single-document updates that hand back the document, in two steps the store indexes.

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

from collections.abc import Mapping
from typing import Any

from pymongo.collection import Collection


def update_then_read(collection: Collection[Any], query: Mapping[str, Any],
                     update: Mapping[str, Any]) -> dict[str, Any] | None:
    """Apply `update` to the one document `query` (which names its `_id`) matches, and
    return it as it is afterwards; None when nothing matched (the guard failed)."""
    if "_id" not in query:
        raise ValueError("update_then_read needs the document's _id in the query")
    if not collection.update_one(dict(query), dict(update)).matched_count:
        return None
    return collection.find_one({"_id": query["_id"]})
