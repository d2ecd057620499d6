"""The layout of DESIGN.md, guarded: packages in layers (each imports only from the layers below it,
or from itself), nothing imports the application package ``prefrl.cli``, only the application prints,
reads argv, shows progress or writes checkpoint files, and the size budget (functions, modules)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "prefrl"

LAYERS = [
    ["datatypes", "masked", "optim", "validation", "checkpoint", "user_code", "__init__"],  # the floor
    ["reward_model"],
    ["envs"],
    ["ppo", "preferences"],
    ["rlhp", "lm", "labelling"],
    ["cli"],  # the application
    ["__main__"],  # python -m prefrl
]
"""Bottom to top: the first part of each module's name below ``prefrl``."""

APPLICATION = LAYERS.index(["cli"])

MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 450


def modules() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(["prefrl", *parts]).removesuffix(".__init__")
        found[name] = (path, ast.parse(path.read_text(), str(path)))
    return found


def unit(module: str) -> str:
    """``prefrl.ppo.trainer`` -> ``ppo``; ``prefrl`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(module: str) -> int:
    name = unit(module)
    for level, names in enumerate(LAYERS):
        if name in names:
            return level
    raise AssertionError(f"{module} is in no layer: add {name!r} to LAYERS (and to DESIGN.md)")


def imported(tree: ast.Module) -> set[str]:
    """Every prefrl module a module imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prefrl"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("prefrl"))
    return names


MODULES = modules()


def test_every_package_imports_only_from_the_layers_below_it():
    wrong = []
    for name, (_, tree) in MODULES.items():
        for target in imported(tree):
            same_unit = unit(target) == unit(name)
            if not same_unit and layer(target) >= layer(name):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the layers of DESIGN.md:\n" + "\n".join(wrong)


def test_the_layer_check_can_fail():
    assert layer("prefrl.ppo.trainer") > layer("prefrl.envs.make") > layer("prefrl.reward_model.nets")
    assert layer("prefrl.cli.main") == APPLICATION
    with pytest.raises(AssertionError, match="in no layer"):
        layer("prefrl.newpackage.thing")


def calls(tree: ast.Module) -> set[str]:
    """Names called (``f(...)``, ``x.f(...)``) and attributes read (``sys.argv``) in a module."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            found.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found.add(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize(
    ("what", "forbidden"),
    [
        ("prints", {"print"}),
        ("reads argv", {"sys.argv"}),
        ("writes a checkpoint file", {"save_checkpoint"}),
    ],
)
def test_only_the_application_does_io(what, forbidden):
    library = {n: t for n, (_, t) in MODULES.items() if layer(n) < APPLICATION}
    offenders = [n for n, tree in library.items() if calls(tree) & forbidden and n != "prefrl.checkpoint"]
    assert not offenders, f"library modules that {what} (only prefrl.cli may): {offenders}"


def test_the_library_never_imports_the_application_or_its_consoles():
    for name, (_, tree) in MODULES.items():
        if layer(name) >= APPLICATION:
            continue
        for node in ast.walk(tree):
            modules_named = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules_named = [node.module]
            elif isinstance(node, ast.Import):
                modules_named = [a.name for a in node.names]
            for module in modules_named:
                assert not module.startswith(("prefrl.cli", "rich")), f"{name} imports {module}"


def test_functions_and_modules_keep_the_size_budget():
    long_functions, long_modules = [], []
    for name, (path, tree) in MODULES.items():
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES:
            long_modules.append(name)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name} ({length} lines)")
    assert not long_functions, f"split these by concept: {long_functions}"
    assert not long_modules, f"split these by concept: {long_modules}"


def test_importing_the_ppo_config_loads_no_reward_model():
    import subprocess
    import sys

    code = (
        "import sys, prefrl.ppo.config; "
        "print(sorted(m for m in sys.modules if m.startswith(('prefrl.reward_model', 'prefrl.cli'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
