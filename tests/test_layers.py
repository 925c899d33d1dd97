"""The package layout is the data flow: a layer imports only itself and the layers below it.

Read from the import graph (every ``import``/``from ... import`` in every module, function-local ones
included), so a deferred import cannot hide an upward dependency. ``mevqa.testing`` (synthetic clips,
tiny models) sits apart: the product reaches it only from the developer commands that make fixtures.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mevqa"

# Bottom to top. A module may import its own layer and any layer listed before it.
LAYERS = ["facs", "io", "face", "motion", "spot", "au", "recognize", "evidence", "vlm", "answer", "megc", "train", "apps"]
# The developer commands that write fixtures (`mevqa synth`, `mevqa tiny-model`, the tiny training
# config) may reach mevqa.testing; nothing else in the product does.
FIXTURE_USERS = {"mevqa.apps.cli", "mevqa.train.trainer", "mevqa.train.config", "mevqa.train.data",
                 "mevqa.train.recognizer_data"}


def _modules():
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), p


def _imports(name: str, path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, node.lineno
            for a in node.names:  # `from mevqa import answer` names a subpackage
                if mod == "mevqa":
                    yield f"mevqa.{a.name}", node.lineno


def _layer(mod: str):
    parts = mod.split(".")
    if len(parts) < 2 or parts[0] != "mevqa":
        return None
    return parts[1]


def test_every_package_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"testing", "prompts"} <= set(LAYERS), packages - set(LAYERS)


def test_layers_import_only_downward():
    bad = []
    for name, path in _modules():
        own = _layer(name)
        if own not in LAYERS:
            continue
        for mod, line in _imports(name, path):
            other = _layer(mod)
            if other is None or other == "prompts":
                continue
            if other == "testing":
                if name not in FIXTURE_USERS:
                    bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {mod} (fixtures)")
                continue
            if other in LAYERS and LAYERS.index(other) > LAYERS.index(own):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} ({own}) imports {mod} ({other})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules():
    graph = {}
    names = dict(_modules())
    for name, path in names.items():
        graph[name] = {m for m, _ in _imports(name, path) if m in names and m != name}
    seen, stack, cycles = set(), [], []

    def visit(n):
        if n in stack:
            cycles.append(stack[stack.index(n):] + [n])
            return
        if n in seen:
            return
        seen.add(n)
        stack.append(n)
        for m in sorted(graph[n]):
            # a package's __init__ re-exporting its own modules is not a cycle worth naming
            if not (m.startswith(n + ".") or n.startswith(m + ".")):
                visit(m)
        stack.pop()

    for n in sorted(graph):
        visit(n)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name,path", [(n, p) for n, p in _modules()], ids=lambda x: str(x))
def test_modules_stay_small(name, path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= 420, f"{name} has {n} lines: split it by what its parts do"
