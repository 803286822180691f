"""The package's layout shows its design: a package per responsibility, every module named
in README.md's module map, no import cycle (type-only and function-level imports
included), no class over 250 lines and no function over 80."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "sqslab"
TOP = {"__init__", "__main__", "cli", "plugins", "hookspecs", "contracts", "credentials", "rundir"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if path.is_symlink() or "templates" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every sqslab module `name` imports, wherever the import is (TYPE_CHECKING, functions)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in out if m in modules and m != name}


def test_no_import_cycle_type_only_and_lazy_imports_included():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycles.append(" -> ".join(trail[trail.index(other):] + [other]))
            elif other not in state:
                visit(other, trail + [other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_top_level_holds_only_what_every_package_shares():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP, f"modules at the top beside the packages: {sorted(top - TOP)}"


def test_the_readme_module_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("- Module map", 1)[1].split("\n- ", 1)[0].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_]+)(?:\.py|/)?`", section))
    missing = sorted(name for name in _modules() if name.rsplit(".", 1)[-1] not in named | {"__init__", "__main__", "sqslab"})
    assert missing == [], f"modules README.md's module map does not name: {missing}"
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= named, f"packages the module map does not name: {sorted(packages - named)}"


def test_no_class_over_250_lines_and_no_function_over_80():
    long = []
    for path in list(_modules().values()) + [ROOT / "consumer" / "consume.py", ROOT / "consumer" / "sqsfaults.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if isinstance(node, ast.ClassDef) and size > 250 or not isinstance(node, ast.ClassDef) and size > 80:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({size} lines)")
    assert long == []
