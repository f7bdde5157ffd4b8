"""The `county` fixture's restore leaves a database as `sample.build()` does (county_template)."""

from __future__ import annotations

from typing import Any

from mongoengine.connection import get_db

from gateway import sample, startup
from gateway.access.tokens import principal_for
from gateway.startup import ensure_indexes
from tests.county_template import load_county


def fresh(settings: Any) -> Any:
    """Drop the database and start again as the `app` fixture does (caches reset too)."""
    get_db().client.drop_database(get_db().name)
    startup.configure(settings)  # a new client: the old handle is closed
    ensure_indexes()
    return get_db()


def shape(db: Any) -> dict[str, Any]:
    """Per collection: documents, their field names, and the indexes (keys and options)."""
    out = {}
    for name in sorted(db.list_collection_names()):
        docs = list(db[name].find())
        indexes = sorted(
            (i["name"], tuple(i["key"].items()),
             tuple(sorted((k, v) for k, v in i.items() if k not in ("key", "v", "ns"))))
            for i in db[name].list_indexes())
        out[name] = (len(docs), sorted({k for d in docs for k in d}), indexes)
    return out


def test_restored_county_is_what_build_makes(app) -> None:
    settings = app.config["SAFEGRID"]
    first = load_county(get_db(), settings)  # makes the template when no test has yet
    db = fresh(settings)
    restored = load_county(db, settings)
    assert restored.tokens == first.tokens  # restored: a real build mints new tokens
    restored_shape = shape(db)
    for who, token in restored.tokens.items():
        assert principal_for(token, 0) is not None, who
    assert sample.is_loaded()

    db = fresh(settings)
    built = sample.build()
    assert shape(db) == restored_shape
    assert restored.tokens.keys() == built.tokens.keys()
    assert (restored.cells, restored.stations) == (built.cells, built.stations)


def test_a_used_database_gets_a_real_build_not_the_template(app) -> None:
    from grid.documents import Station

    settings = app.config["SAFEGRID"]
    template_tokens = load_county(get_db(), settings).tokens
    db = fresh(settings)
    Station(code="X-1", name="elsewhere", county_code="999999").save()
    county = load_county(db, settings)
    assert Station.objects.count() == 1 + len(county.stations)
    assert set(county.tokens.values()).isdisjoint(template_tokens.values())
    for token in county.tokens.values():
        assert principal_for(token, 0) is not None
