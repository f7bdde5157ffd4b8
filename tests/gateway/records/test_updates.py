"""Bulk writes in pieces (gateway/records/updates.py)."""

from __future__ import annotations

import pytest
from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from gateway.records import updates
from gateway.records.tallies import Tally


@pytest.fixture
def collection(app, monkeypatch):
    monkeypatch.setattr(updates, "BULK_PIECE", 3)
    return Tally._get_collection()


def test_a_bulk_write_goes_in_pieces_and_answers_for_all_of_them(collection, monkeypatch):
    commands = []
    bulk_write = type(collection).bulk_write

    def counted(self, ops, **kwargs):
        commands.append(len(ops))
        return bulk_write(self, ops, **kwargs)

    monkeypatch.setattr(type(collection), "bulk_write", counted)
    collection.insert_many([{"_id": f"t{i}", "n": 0} for i in range(4)])
    ops = [UpdateOne({"_id": f"t{i}"}, {"$inc": {"n": 1}}, upsert=True) for i in range(8)]
    modified, upserted = updates.bulk_in_pieces(collection, ops)
    assert commands == [3, 3, 2]
    assert modified == 4
    assert sorted(upserted) == [4, 5, 6, 7]  # by the op's index in the whole list
    assert {doc["_id"] for doc in collection.find({"_id": {"$in": list(upserted.values())}})} \
        == {"t4", "t5", "t6", "t7"}


def test_a_duplicate_is_no_error_only_when_said_so(collection):
    collection.insert_one({"_id": "taken"})
    ops = [InsertOne({"_id": "new-1"}), InsertOne({"_id": "taken"}), InsertOne({"_id": "new-2"}),
           InsertOne({"_id": "new-3"})]
    assert updates.bulk_in_pieces(collection, ops, duplicates_ok=True) == (0, {})
    assert collection.count_documents({"_id": {"$in": ["new-1", "new-2", "new-3"]}}) == 3
    with pytest.raises(BulkWriteError):
        updates.bulk_in_pieces(collection, [InsertOne({"_id": "taken"})])
