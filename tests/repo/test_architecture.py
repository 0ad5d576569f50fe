"""Imports flow one way: facade (executor) -> engine -> commands (check, stack) -> AWS plumbing -> messages
-> pure core.

Layers are given per package (``core``, ``request``, ``engine``, ...) and per top-level module. A module
imports at module level only from its own layer or lower ones; the graph of every import (lazy ones too,
not those under ``TYPE_CHECKING``) has no cycle; the pure packages do no I/O; only the AWS plumbing reads
botocore's errors. The local ECS endpoint and the demo are development tools: product modules never
import them, and the size rule applies to them too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "ecs_executor"
DEV_TOOLS = ("local_ecs", "demo")
# Lowest first. A module may import modules of its own layer or a lower one (at module level).
LAYERS: dict[str, int] = {
    # pure: no I/O
    "core": 0,
    "request": 0,
    "config": 0,
    "provider": 0,
    # the queues between the threads
    "messages": 1,
    # AWS plumbing outside the engine
    "aws": 2,
    # commands that read AWS through it
    "check": 3,
    "stack": 3,
    # the engine (all AWS I/O on its thread)
    "engine": 4,
    # the scheduler-side facade
    "facade": 5,
    "executor": 5,
    # entry points
    "cli": 6,
    "__main__": 6,
    "__init__": 6,
    # the container's entry point for sealed workloads (apart: imports only core.envelope, task_status)
    "worker": 6,
    # development tools: may import the product, never imported by it
    "local_ecs": 7,
    "demo": 7,
}
PURE = ("core", "request", "config", "provider")
IO_MODULES = {"aiobotocore", "aiohttp", "airflow", "boto3", "socket", "requests", "subprocess", "threading"}


def all_modules() -> dict[str, Path]:
    """Dotted name relative to the package (``engine.launcher``, ``core``) -> file."""
    modules = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name.removesuffix(".__init__")
        modules[name] = path
    return modules


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    assert top in LAYERS, f"ecs_executor/{module}: give its package a layer in {__file__}"
    return LAYERS[top]


def _imported(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module:
        # `from ecs_executor.core import triage` imports the module ecs_executor.core.triage
        return {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return set()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def top_level_imports(path: Path) -> set[str]:
    """Module-level imports (TYPE_CHECKING blocks do not run)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        names |= _imported(node)
    return names


def every_import(path: Path) -> set[str]:
    """Module-level and lazy (inside functions) imports, without those under TYPE_CHECKING."""
    names: set[str] = set()

    def walk(node: ast.AST) -> None:
        if _is_type_checking(node):
            return
        names.update(_imported(node))
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(ast.parse(path.read_text()))
    return names


ALL = all_modules()
MODULES = {name: path for name, path in ALL.items() if name.split(".")[0] not in DEV_TOOLS}


def internal(imports: set[str]) -> set[str]:
    """Our modules among ``imports`` (a package's ``__init__`` counts only when nothing under it is named)."""
    ours = {i.removeprefix("ecs_executor.") for i in imports if i.startswith("ecs_executor.")}
    ours = {i for i in ours if i in ALL}
    return {i for i in ours if not any(o.startswith(i + ".") for o in ours)}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module: str) -> None:
    for target in internal(top_level_imports(MODULES[module])):
        assert target.split(".")[0] not in DEV_TOOLS, f"{module} imports the dev tool {target}"
        assert layer_of(target) <= layer_of(module), f"{module} (layer {layer_of(module)}) imports {target}"


def test_the_import_graph_has_no_cycles() -> None:
    """Lazy imports count: a cycle through a function-level import is still two modules that need each
    other."""
    graph = {name: internal(every_import(path)) - {name} for name, path in ALL.items()}
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


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] in PURE))
def test_pure_modules_do_no_io(module: str) -> None:
    imports = every_import(MODULES[module])
    assert not {name.split(".")[0] for name in imports} & IO_MODULES, imports


def test_only_the_aws_plumbing_reads_botocore_errors() -> None:
    """And the worker, which runs in the container without the executor (it cannot import aws/)."""
    readers = {name for name, path in MODULES.items() if "botocore.exceptions" in path.read_text()}
    assert readers == {"aws.clients", "worker.unseal"}, readers


def test_the_worker_imports_only_the_envelope_and_the_exit_codes() -> None:
    """tests/integration/test_worker.py checks the same in a real run (no Airflow, no pydantic)."""
    for name, path in MODULES.items():
        if name.split(".")[0] == "worker":
            imports = internal(every_import(path)) - {"worker", "worker.unseal"}
            assert imports <= {"core.envelope", "core.task_status"}, (name, imports)


def test_the_facade_imports_no_cli_and_no_log_reader() -> None:
    imports = internal(top_level_imports(MODULES["executor"]))
    assert not {i.split(".")[0] for i in imports} & {"cli", "check", "stack", "aws"}, imports
    assert not any(i.startswith("airflow.cli") for i in top_level_imports(MODULES["executor"]))


def test_cli_definitions_do_not_load_the_check() -> None:
    """The command definitions may read the pure argument table (stack.options), not what runs a command."""
    imports = internal(top_level_imports(MODULES["cli"]))
    assert not {i for i in imports if i.split(".")[0] == "check" or i == "stack.command"}, imports


def test_importing_the_executor_loads_no_cli_check_or_log_reader() -> None:
    """The same, transitively, in a fresh interpreter (what the scheduler and the API server import)."""
    code = (
        "import sys, ecs_executor.executor; "
        "print(sorted(m for m in sys.modules if m in "
        "('ecs_executor.cli', 'ecs_executor.check.run', 'ecs_executor.aws.container_logs', "
        "'ecs_executor.local_ecs')))"
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
    assert internal(top_level_imports(MODULES["messages"])) <= {"request.run_task", "core.task_status"}


def test_ecs_rules_stand_alone() -> None:
    """The product and the local endpoint both build on ecs_rules, so it depends on neither."""
    assert not internal(top_level_imports(MODULES["request.ecs_rules"]))


# "No module over ~400 lines, no class over ~300, no function over ~60" (with a little slack). The dev
# tools too: a newcomer reads them to learn what the executor is tested against.
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 420, 310, 60


@pytest.mark.parametrize("module", sorted(ALL))
def test_modules_classes_and_functions_stay_small(module: str) -> None:
    source = ALL[module].read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{module}: {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        size = (node.end_lineno or 0) - getattr(node, "lineno", 0) + 1 if hasattr(node, "end_lineno") else 0
        if isinstance(node, ast.ClassDef):
            assert size <= MAX_CLASS_LINES, f"{module}.{node.name}: {size} lines"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert size <= MAX_FUNCTION_LINES, f"{module}.{node.name}: {size} lines"
