"""Imports flow one way: executor (facade) -> messages -> engine -> AWS plumbing -> pure core.

Each product module has a layer; a module imports (at module level) only from its own layer or lower
ones, the graph has no cycles, the core does no I/O, and only the AWS plumbing reads botocore's errors.
The local ECS endpoint and the demo are development tools: product modules never import them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ecs_executor"
DEV_TOOLS = ("local_ecs", "demo")
# Lowest first. A module may import modules of its own layer or a lower one.
LAYERS: dict[str, int] = {
    # pure core: no I/O
    "config": 0,
    "config_values": 0,
    "config_checks": 0,
    "layering": 0,
    "run_task": 0,
    "states": 0,
    "triage": 0,
    "handback": 0,
    "orphans": 0,
    "relaunch": 0,
    "lifecycle": 0,
    "ratelimit": 0,
    "redact": 0,
    "ecs_rules": 0,
    "ecs_events": 0,
    "provider": 0,
    "stack_config": 0,
    # the queues between the threads
    "messages": 1,
    # AWS plumbing and what reads AWS through it
    "aws": 2,
    "arns": 0,
    "cloudwatch": 2,
    "check_probe": 3,
    "check_network": 3,
    "check_events": 3,
    "check": 3,
    "check_report": 3,
    "config_from_stack": 3,
    # the engine (all AWS I/O on its thread)
    "engine": 4,
    # the scheduler-side facade and its metrics
    "metrics": 5,
    "executor": 5,
    "startup": 5,
    "workloads": 5,
    # commands
    "cli": 6,
    "__main__": 6,
    "__init__": 6,
}
PURE = [name for name, layer in LAYERS.items() if layer == 0]
IO_MODULES = {"aiobotocore", "aiohttp", "airflow", "boto3", "socket", "requests", "subprocess", "threading"}


def product_modules() -> dict[str, Path]:
    """Dotted name relative to the package (engine parts as ``engine.launcher``) -> file."""
    modules = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        if rel.parts[0] in DEV_TOOLS:
            continue
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name.removesuffix(".__init__")
        modules[name] = path
    return modules


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    assert top in LAYERS, f"ecs_executor/{module}: give it a layer in tests/test_architecture.py"
    return LAYERS[top]


def top_level_imports(path: Path) -> set[str]:
    """Module-level imports (lazy imports inside functions are how upper layers are reached on purpose)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.If):  # TYPE_CHECKING blocks do not run
            continue
    return names


def internal(imports: set[str]) -> set[str]:
    return {i.removeprefix("ecs_executor.") for i in imports if i.startswith("ecs_executor.")}


MODULES = product_modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module: str) -> None:
    for target in internal(top_level_imports(MODULES[module])):
        assert target.split(".")[0] not in DEV_TOOLS, f"{module} imports the dev tool {target}"
        assert layer_of(target) <= layer_of(module), f"{module} (layer {layer_of(module)}) imports {target}"


def test_the_import_graph_has_no_cycles() -> None:
    graph = {
        name: {t for t in internal(top_level_imports(path)) if t in MODULES} for name, path in MODULES.items()
    }
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        assert node not in visiting, " -> ".join([*trail, node])
        if node in done:
            return
        visiting.add(node)
        for nxt in graph[node]:
            visit(nxt, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for name in graph:
        visit(name, [])


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    path = PKG / f"{module}.py"
    if not path.exists():
        pytest.skip(f"{module}.py not present")
    imports = top_level_imports(path)
    assert not {name.split(".")[0] for name in imports} & IO_MODULES, imports


def test_only_the_aws_plumbing_reads_botocore_errors() -> None:
    readers = {name for name, path in MODULES.items() if "botocore.exceptions" in path.read_text()}
    assert readers == {"aws"}, readers


def test_the_facade_imports_no_cli_and_no_log_reader() -> None:
    imports = internal(top_level_imports(MODULES["executor"]))
    assert not imports & {"cli", "check", "cloudwatch", "aws"}, imports
    assert not any(i.startswith("airflow.cli") for i in top_level_imports(MODULES["executor"]))


def test_cli_definitions_do_not_load_the_check() -> None:
    assert "check" not in internal(top_level_imports(MODULES["cli"]))


def test_importing_the_executor_loads_no_cli_check_or_log_reader() -> None:
    """The same, transitively, in a fresh interpreter (what the scheduler and the API server import)."""
    code = (
        "import sys, ecs_executor.executor; "
        "print(sorted(m for m in sys.modules if m in "
        "('ecs_executor.cli', 'ecs_executor.check', 'ecs_executor.cloudwatch', 'ecs_executor.local_ecs')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_engine_does_not_import_airflow_at_module_level() -> None:
    for name, path in MODULES.items():
        if name.startswith("engine"):
            assert not any(i.startswith("airflow") for i in top_level_imports(path)), name


def test_messages_depend_only_on_value_objects() -> None:
    assert internal(top_level_imports(MODULES["messages"])) <= {"run_task", "states"}


def test_ecs_rules_stand_alone() -> None:
    """The product and the local endpoint both build on ecs_rules, so it depends on neither."""
    assert not internal(top_level_imports(MODULES["ecs_rules"]))


# "No product module over ~400 lines, no class over ~300, no function over ~60" (with a little slack).
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 420, 310, 60


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_classes_and_functions_stay_small(module: str) -> None:
    source = MODULES[module].read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{module}: {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        size = (node.end_lineno or 0) - getattr(node, "lineno", 0) + 1 if hasattr(node, "end_lineno") else 0
        if isinstance(node, ast.ClassDef):
            assert size <= MAX_CLASS_LINES, f"{module}.{node.name}: {size} lines"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert size <= MAX_FUNCTION_LINES, f"{module}.{node.name}: {size} lines"
