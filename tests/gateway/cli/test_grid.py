"""`safegrid grid import|check|stats|export` through click, against the test's stores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway import gridcache, sample, startup
from gateway.cli.grid import grid, parse_when
from gateway.extensions import redis_store
from grid.documents import GridCell, Station
from grid.jurisdiction import Generation

SAMPLE_FILE = Path(__file__).resolve().parents[3] / "deploy" / "sample-grid.geojson"


@pytest.fixture
def run(app, settings, monkeypatch):  # type: ignore[no-untyped-def]
    """Invoke `grid …` configured from the environment, pointed at this test's stores."""
    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", settings.data_keys)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(grid, list(args), catch_exceptions=False)

    return invoke


def version() -> int:
    raw = redis_store.conn.get(gridcache.VERSION_KEY)
    return int(raw) if raw is not None else 0


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_import_the_sample_file_into_an_empty_store(run):
    before = version()
    result = run("import", str(SAMPLE_FILE))
    assert result.exit_code == 0, result.output
    assert "stations: 4 were created, 0 updated, 0 unchanged" in result.output
    assert "cells: 48 were created, 0 updated, 0 unchanged" in result.output
    assert GridCell.objects.count() == 48
    assert Station.objects(kind="county_desk").count() == 1
    assert version() == before + 1  # every process reloads its snapshot
    again = run("import", str(SAMPLE_FILE))
    assert "cells: 0 were created, 0 updated, 48 unchanged" in again.output


def test_a_dry_run_writes_nothing(run):
    result = run("import", "--dry-run", "--effective-from", "2026-07-01", str(SAMPLE_FILE))
    assert result.exit_code == 0, result.output
    assert "cells: 48 would be created" in result.output
    assert "a jurisdiction generation would be recorded" in result.output
    assert GridCell.objects.count() == 0
    assert Generation.objects.count() == 0
    assert version() == 0


def test_effective_from_is_a_local_date_and_records_a_generation(run):
    result = run("import", "--effective-from", "2020-01-01", str(SAMPLE_FILE))
    assert result.exit_code == 0, result.output
    assert "jurisdiction generation 1 in force from 2020-01-01 (Asia/Shanghai)" in result.output
    # Midnight in Beijing is 16:00 UTC the day before.
    assert Generation.objects.get().effective_from == dt.datetime(2019, 12, 31, 16, 0)


def test_a_bad_effective_from_is_a_usage_error(run):
    result = run("import", "--effective-from", "1 July", str(SAMPLE_FILE))
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output
    assert GridCell.objects.count() == 0


def test_parse_when_accepts_a_time():
    assert parse_when("2026-07-01 08:30", "Asia/Shanghai") == dt.datetime(2026, 7, 1, 0, 30)


def test_malformed_json_is_a_clear_error(run, tmp_path):
    result = run("import", str(write(tmp_path / "bad.geojson", '{"type": "FeatureColl')))
    assert result.exit_code == 1
    assert "malformed: not valid JSON" in result.output
    assert "nothing imported" in result.output
    assert "Traceback" not in result.output


def test_every_problem_is_listed_by_code_and_nothing_is_written(run, tmp_path):
    data = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    cells = [f for f in data["features"] if f["properties"]["kind"] == "cell"]
    ring = cells[0]["geometry"]["coordinates"][0]
    cells[0]["geometry"]["coordinates"][0] = [ring[0], ring[2], ring[1], ring[3], ring[0]]
    cells[1]["properties"]["code"] = cells[2]["properties"]["code"]
    cells[3]["properties"]["station_code"] = "530627-ZZ"
    cells[4]["geometry"]["coordinates"][0] = [[lat, lon] for lon, lat in ring]
    result = run("import", str(write(tmp_path / "grid.geojson", data)))
    assert result.exit_code == 1
    for code, kind in ((cells[0], "invalid_polygon"), (cells[2], "duplicate_code"),
                       (cells[3], "unknown_station"), (cells[4], "swapped_lat_lon")):
        assert f"error {code['properties']['code']} {kind}:" in result.output
    assert "4 error(s), 0 warning(s)" in result.output
    assert GridCell.objects.count() == 0


def test_an_overlap_with_the_stored_grid_stops_the_import(run, county, tmp_path):
    stored = GridCell.objects(code=sample.cell_code(0, 0, 0)).get()
    west, south = stored.ring[0]
    ring = [[west + 0.001, south + 0.001], [west + 0.003, south + 0.001],
            [west + 0.003, south + 0.003], [west + 0.001, south + 0.001]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
               "properties": {"kind": "cell", "code": "530627001001009", "name": "重叠",
                              "station_code": "530627-WF"}}
    path = write(tmp_path / "one.geojson", {"type": "FeatureCollection", "features": [feature]})
    before = version()
    result = run("import", str(path))
    assert result.exit_code == 1
    assert f"error {sample.cell_code(0, 0, 0)} overlap: overlaps cell 530627001001009" in (
        result.output)
    assert GridCell.objects.count() == 48
    assert version() == before


def test_check_a_good_grid(run, county):
    result = run("check")
    assert result.exit_code == 0, result.output
    assert "grid OK: 48 cells, 4 stations" in result.output


def test_check_reports_stored_problems_by_code(run, county):
    first = GridCell.objects(code=sample.cell_code(0, 0, 0)).get()
    GridCell(code="530627001001009", name="重叠", ring=first.ring, village_code="530627001001",
             township_code="530627001000", county_code="530627",
             station_code="530627-GONE").save()
    GridCell.objects(code=sample.cell_code(1, 0, 2)).delete()  # inside the block: a hole
    result = run("check")
    assert result.exit_code == 1
    assert f"error {sample.cell_code(0, 0, 0)} overlap" in result.output
    assert "error 530627001001009 unknown_station" in result.output
    assert "warning 530627001002002 gap: a gap of about " in result.output
    assert run("check", "--warnings-ok").exit_code == 1  # errors remain


def test_check_with_only_a_gap_passes_with_warnings_ok(run, county):
    GridCell.objects(code=sample.cell_code(1, 0, 2)).delete()
    assert run("check").exit_code == 1
    result = run("check", "--warnings-ok")
    assert result.exit_code == 0
    assert "0 error(s), 1 warning(s): gap 1" in result.output


def test_stats(run, county):
    result = run("stats")
    assert result.exit_code == 0, result.output
    assert "cells: 48 in 1 counties, 3 townships, 12 villages" in result.output
    assert "  530627-WF  16" in result.output
    figures = json.loads(run("stats", "--json").output)
    assert figures["cells_per_station"] == {"530627-NT": 16, "530627-PJ": 16, "530627-WF": 16}


def test_export_of_the_sample_county_is_the_sample_file(run, county, tmp_path):
    out = tmp_path / "out" / "grid.geojson"
    result = run("export", str(out))
    assert result.exit_code == 0, result.output
    assert "4 stations, 48 cells" in result.output
    # deploy/sample-grid.geojson is this export; regenerate it when the sample changes.
    assert out.read_text(encoding="utf-8") == SAMPLE_FILE.read_text(encoding="utf-8")


def test_export_to_standard_output(run, county):
    result = run("export", "-")
    data = json.loads(result.output)
    assert len(data["features"]) == 52


def test_a_store_that_is_down_is_a_clear_error(app, settings, monkeypatch):
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/sg_down")  # discard port: refused
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("SAFEGRID_DATA_KEYS", settings.data_keys)
    try:
        result = CliRunner().invoke(grid, ["stats"], catch_exceptions=False)
    finally:
        startup.configure(settings)  # back to this test's stores for the teardown
    assert result.exit_code == 1
    assert "database error" in result.output


def test_a_process_without_its_settings_is_a_clear_error(app, monkeypatch):
    monkeypatch.delenv("SAFEGRID_DATA_KEYS", raising=False)
    result = CliRunner().invoke(grid, ["stats"], catch_exceptions=False)
    assert result.exit_code == 2  # a usage problem: the settings, not the data
    assert result.output.startswith("safegrid: SAFEGRID_DATA_KEYS is not set")
