"""Imports go one way, and nothing of ours imports itself back in a circle.

Between packages: gateway → grid, sms, geo; grid → geo; sms and geo import none of
ours. Inside gateway/, the rooms below import downwards only, in ROOMS' order, and
api/ is imported by the app factory alone. Every import counts, at any depth in a
file (a function-level import is still an import), and importing `a.b.c` also
runs `a/__init__.py` and `a/b/__init__.py`, so those count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"gateway", "grid", "sms", "geo", "deploy", "bench", "tests", "wsgi"}
ALLOWED = {
    "gateway": {"gateway", "grid", "sms", "geo"},
    "grid": {"grid", "geo"},
    "sms": {"sms"},
    "geo": {"geo"},
}
# The floors of gateway/, from the ground up: a module or subpackage may import
# only from its own floor or one below. docs/architecture.md draws the same order.
ROOMS = (
    "settings", "errors", "extensions", "jsonlog", "telemetry", "runtime", "gridcache",  # ground
    "privacy",  # sealing, the phone book, the audit log, no genetic data
    "records",  # people, reports and tokens as stored
    "access",  # tokens, login, passwords, TOTP, SMS PIN
    "delivery",  # route, queues, cases, dispatch workflow, SLA clock, visibility, outbound SMS
    "alerts",  # missing-child rapid alerts: issuing, rings, fan-out
    "intake",  # app and SMS intake, and the replies
    "custody",  # break-glass, legal hold, retention, the catalog of sealed values
    "enrolment",  # units, reporters, officers, stations kept by administrators
    "insight",  # the bureau's figures: counts, hotspots, response times, duty, exports
    "sample", "startup", "worker", "security", "bodies", "fields",  # the top floor: processes
    "api", "open311", "alert_api", "insight_api",  # the web APIs: flask-smorest's, Open311's,
    # alerts, figures
    "console",  # the police console's pages: sessions, CSRF, inbox, dispatch, map, county
    "observe",  # /metrics for Prometheus, the request id
    "cli", "app",
)
MAX_MODULES_PER_ROOM = 12


def imported_modules(path: Path) -> Iterator[str]:
    """Every module name `path` imports (absolute or relative), at any depth in the file."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def imported_packages(path: Path) -> set[str]:
    """The top-level packages of ours that `path` imports (at any depth in the file)."""
    return {name.split(".")[0] for name in imported_modules(path)} & OURS


def module_name(path: Path) -> str:
    inside = path.resolve().is_relative_to(ROOT)
    parts = (path.resolve().relative_to(ROOT) if inside else Path(path.name)).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules() -> dict[str, Path]:
    return {module_name(p): p
            for package in ALLOWED for p in sorted((ROOT / package).rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """module → the modules of ours it makes Python run (their parent packages included)."""
    modules = product_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(path):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in modules and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def room_of(module: str) -> str | None:
    """The room of a gateway module (`gateway.delivery.workflow` → `delivery`)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "gateway" and len(parts) > 1 else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_go_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    wrong = {str(f.relative_to(ROOT)): sorted(imported_packages(f) - ALLOWED[package])
             for f in files}
    assert {f: pkgs for f, pkgs in wrong.items() if pkgs} == {}


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_every_gateway_module_has_a_room():
    rooms = {room_of(m) for m in product_modules() if room_of(m)}
    assert rooms - set(ROOMS) == set(), "a new room or module: give it its floor in ROOMS"


def test_rooms_import_downwards_only():
    floor = {room: i for i, room in enumerate(ROOMS)}
    upwards = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items() if room_of(module) in floor
        for target in targets
        if room_of(target) in floor and floor[room_of(target)] > floor[room_of(module)]
    )
    assert upwards == []


def test_only_the_app_factory_imports_the_api():
    importers = sorted(module for module, targets in import_graph().items()
                       if room_of(module) != "api"
                       and any(room_of(t) == "api" for t in targets))
    assert importers == ["gateway.app"]


def test_rooms_are_small_and_say_what_they_hold():
    for room in ROOMS:
        package = ROOT / "gateway" / room
        if not package.is_dir():
            continue
        init = package / "__init__.py"
        assert init.exists(), f"gateway/{room}/ has no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), (
            f"gateway/{room}/__init__.py: say what lives there and what it may import")
        modules = [p for p in package.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= MAX_MODULES_PER_ROOM, f"gateway/{room}/ has {len(modules)} modules"


def test_package_inits_import_nothing_of_ours():
    # A re-export in an __init__ would run the whole room whenever one module of it is used.
    busy = sorted(name for name, path in product_modules().items()
                  if path.name == "__init__.py" and imported_packages(path))
    assert busy == []


def test_the_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gateway.runtime import settings\n", encoding="utf-8")
    assert imported_packages(bad) == {"gateway"}


def test_the_check_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_check_resolves_relative_imports_and_parent_packages():
    graph = import_graph()
    assert "gateway.delivery" in graph["gateway.delivery.workflow"]  # its package runs first
    assert "gateway.delivery.escalation" in graph["gateway.delivery.workflow"]
