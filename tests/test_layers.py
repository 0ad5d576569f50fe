"""Imports flow one way: executor -> messages -> engine -> pure core. The core never does I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ecs_executor"
PURE = ["config", "run_task", "states", "triage", "ratelimit", "redact", "provider", "arns"]
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


def top_level_imports(module: str) -> set[str]:
    """Modules imported when ``module`` is imported (not those imported inside functions)."""
    tree = ast.parse((PKG / f"{module}.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_aws_plumbing_sits_below_the_engine() -> None:
    imports = imported_modules("aws")
    assert not imports & {"ecs_executor.engine", "ecs_executor.executor", "ecs_executor.messages"}
    assert not any(name.startswith("airflow") for name in top_level_imports("aws"))


def package_modules() -> list[str]:
    return sorted(str(p.relative_to(PKG).with_suffix("")).replace("/", ".") for p in PKG.rglob("*.py"))


# TODO(lead): remove "engine" once engine.py reads errors through ecs_executor.aws.
BOTOCORE_EXCEPTIONS_ALLOWED = {"aws", "engine"}


def test_only_aws_reads_botocore_exceptions() -> None:
    """botocore's exception classes are read into our own terms in one place (aws.py)."""
    offenders = []
    for module in package_modules():
        tree = ast.parse((PKG / f"{module.replace('.', '/')}.py").read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(n == "botocore.exceptions" or n.startswith("botocore.exceptions.") for n in names):
                offenders.append(module)
    assert set(offenders) <= BOTOCORE_EXCEPTIONS_ALLOWED, offenders


# What the scheduler's facade must not load when it is imported: the CLI, the check, the log reader,
# and the boto3 plumbing they bring (get_task_log and get_cli_commands import theirs when called).
NOT_IN_THE_FACADE = {
    "ecs_executor.cli",
    "ecs_executor.check",
    "ecs_executor.cloudwatch",
    "ecs_executor.task_logs",
    "ecs_executor.aws",
    "airflow.cli",
    "airflow.cli.cli_config",
}


def test_facade_loads_no_cli_check_or_log_reader_at_import() -> None:
    assert not top_level_imports("executor") & NOT_IN_THE_FACADE


def test_cli_definitions_do_not_load_the_check() -> None:
    assert "ecs_executor.check" not in top_level_imports("cli")


def test_importing_the_executor_loads_no_cli_check_or_log_reader() -> None:
    """The same, transitively, in a fresh interpreter (what the scheduler and API server import)."""
    import subprocess
    import sys

    code = (
        "import sys, ecs_executor.executor; "
        "print(sorted(m for m in sys.modules if m in "
        "('ecs_executor.cli', 'ecs_executor.check', 'ecs_executor.cloudwatch', 'ecs_executor.task_logs')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
