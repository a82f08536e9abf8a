"""The house's plan, read from the source: imports run reports -> tuning -> search_spaces, each
room of `tuning/` imports only the rooms below it, and no room outgrows a screenful of names."""

import ast
from pathlib import Path

import pytest
from conftest import ROOT

# Each room of tuning/ and the rooms (or face modules) it may import; the face may import all.
VOCABULARY = {"tuning", "tuning.config", "tuning.errors"}  # shared by every room
ROOMS = {
    "host": {"host"},
    "data": {"host", "data"},
    "rundir": {"host", "data", "rundir"},
    "distribute": {"host", "data", "rundir", "distribute"},
    "engine": {"host", "data", "rundir", "distribute", "engine", "result", "space"},
}


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def sources(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def test_search_spaces_imports_nothing_of_tuning_or_reports():
    for path in sources("search_spaces"):
        wrong = {n for n in imported(path) if n.split(".")[0] in ("tuning", "reports")}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_tuning_never_imports_reports():
    """`tuning/__init__.py` forwards `build_report` by name, lazily: a string, not an import."""
    for path in sources("tuning"):
        wrong = {n for n in imported(path) if n.split(".")[0] == "reports"}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_imports_only_the_rooms_below_it(room):
    for path in sources(f"tuning/{room}"):
        for name in imported(path):
            parts = name.split(".")
            if parts[0] != "tuning" or name in VOCABULARY or len(parts) < 2:
                continue
            if f"tuning.{parts[1]}" in VOCABULARY:
                continue
            assert parts[1] in ROOMS[room], f"{path.relative_to(ROOT)} imports {name}"


def test_no_room_holds_more_than_ten_modules():
    face = sorted(p.name for p in (ROOT / "tuning").glob("*.py"))
    assert len(face) <= 10, face
    for room in ROOMS:
        modules = sorted(p.name for p in (ROOT / "tuning" / room).glob("*.py"))
        assert len(modules) <= 10, (room, modules)


def test_every_room_says_what_it_is_for_and_what_it_may_import():
    for room in ROOMS:
        docstring = ast.get_docstring(
            ast.parse((ROOT / "tuning" / room / "__init__.py").read_text())
        )
        assert docstring and "import" in docstring, room


def test_the_methods_are_listed_alike_with_and_without_keras():
    import search_spaces
    import tuning.config

    assert search_spaces.METHODS == tuning.config.METHODS
