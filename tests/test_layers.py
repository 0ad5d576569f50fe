"""Imports flow one way: executor -> messages -> engine -> pure core. The core never does I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ecs_executor"
PURE = ["config", "run_task", "states", "triage", "ratelimit", "redact", "provider", "ecs_rules"]
IO_MODULES = {"aiobotocore", "aiohttp", "airflow", "boto3", "socket", "requests", "subprocess", "threading"}


def imported_modules(module: str) -> set[str]:
    tree = ast.parse((PKG / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    imports = imported_modules(module)
    assert not {name.split(".")[0] for name in imports} & IO_MODULES, imports
    assert not any(name in ("ecs_executor.engine", "ecs_executor.executor") for name in imports)


def test_engine_does_not_import_the_executor_or_airflow_at_module_level() -> None:
    imports = imported_modules("engine")
    assert "ecs_executor.executor" not in imports
    tree = ast.parse((PKG / "engine.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any(getattr(n, "module", "") and n.module.startswith("airflow") for n in top_level)


def test_messages_depend_only_on_value_objects() -> None:
    imports = {i for i in imported_modules("messages") if i.startswith("ecs_executor")}
    assert imports <= {"ecs_executor.run_task", "ecs_executor.states"}


def test_client_builder_sits_below_the_engine() -> None:
    imports = imported_modules("ecs_client")
    assert not imports & {"ecs_executor.engine", "ecs_executor.executor", "ecs_executor.messages"}
    tree = ast.parse((PKG / "ecs_client.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any(getattr(n, "module", "") and n.module.startswith("airflow") for n in top_level)


def test_ecs_rules_stand_alone() -> None:
    """The product and the local endpoint both build on ecs_rules, so it depends on neither."""
    assert not {i for i in imported_modules("ecs_rules") if i.startswith("ecs_executor")}
