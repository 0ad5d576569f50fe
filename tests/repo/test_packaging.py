"""The runtime wheel holds the executor only: the local ECS endpoint and the demo are development tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_leaves_out_the_development_tools(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "ecs_executor", src / "ecs_executor", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ecs_executor/executor.py" in names and "ecs_executor/engine/launcher.py" in names
    assert "ecs_executor/py.typed" in names
    assert not [n for n in names if n.startswith(("ecs_executor/local_ecs/", "ecs_executor/demo/"))]
