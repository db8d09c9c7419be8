"""Data flows one way: the lower modules import nothing of the stages that use them."""

from __future__ import annotations

import subprocess
import sys

import pytest

# module → transferlab packages it must not pull in (directly or through function imports)
LAYERS = {
    "transferlab.training.data": ("transferlab.scoring",),
    "transferlab.training.outputs": ("transferlab.scoring",),
    "transferlab.scoring.adapters": ("transferlab.training",),
    "transferlab.scoring.requests": ("transferlab.training",),
    "transferlab.analysis.command": ("transferlab.conversion", "transferlab.models"),
    "transferlab.plan": ("transferlab.scoring", "torch"),
}


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_a_module_does_not_reach_up(module):
    forbidden = LAYERS[module]
    code = (
        f"import sys, {module}\n"
        f"print(sorted({{m.split('.')[0] if m == 'torch' else m for m in sys.modules "
        f"if m.startswith({forbidden!r})}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_cycles_are_gone_from_the_sources():
    import ast
    from pathlib import Path

    import transferlab

    root = Path(transferlab.__file__).parent
    imports: dict[str, set[str]] = {}
    for file in root.rglob("*.py"):
        name = "transferlab." + ".".join(file.relative_to(root).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
        imports[name] = {m for m in found if m.startswith("transferlab")}
    pairs = [
        ("transferlab.analysis.schema", "transferlab.analysis.aggregate"),
        ("transferlab.tasks.taskfile", "transferlab.tasks.lmeval"),
    ]
    for a, b in pairs:
        assert not (b in imports[a] and a in imports[b]), (a, b)
