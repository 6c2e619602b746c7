"""The layers of docs/ARCHITECTURE.md: imports flow one way only, from each layer to those listed before it
(report, explorer and notebook sit side by side above api; cli above all; nothing imports cli)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "latentspace"
ORDER = {"utils": 0, "data": 1, "models": 2, "train": 3, "latent": 4, "metrics": 5, "viz": 6, "api": 7,
         "report": 8, "explorer": 8, "notebook": 9, "cli": 10}
SIDE_BY_SIDE = {("notebook", "explorer")}  # the notebook shows the explorer in an IFrame


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "latentspace" and parts[1] in ORDER else None


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_every_module_belongs_to_a_layer():
    stray = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if p.parent != PACKAGE and p.relative_to(PACKAGE).parts[0] not in ORDER]
    assert not stray, stray


def test_imports_flow_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem in ORDER else None
        if own is None:  # latentspace/__init__.py and __main__.py: the package's doors, importing lazily
            continue
        for module in imports(path):
            other = layer_of(module)
            if other is None or other == own or (own, other) in SIDE_BY_SIDE:
                continue
            if ORDER[other] >= ORDER[own]:
                wrong.append(f"{rel}: imports {module} ({other} is not below {own})")
    assert not wrong, "\n".join(sorted(set(wrong)))
