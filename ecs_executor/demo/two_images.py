"""``make demo ARGS="--image A --other-image B"``: one DAG whose tasks ask for two images.

The DAG ``ecs_two_images_demo`` names the images through ``executor_config`` (it reads them from the
environment the demo gives the DAG processor); the executor derives one task definition per image from
the base one, and the local endpoint's podman runner starts each ECS task from its definition's image.
Which image each ECS task ran comes from the endpoint's launch records; what the task saw inside its
container (the ``ECS_DEMO_IMAGE_MARK`` variable an image may set) from the task's return value.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ecs_executor.demo.deployment import LocalDeployment
from ecs_executor.demo.task_definitions import CONTAINER

DAG_ID = "ecs_two_images_demo"
EXPECTED_TASKS = 4  # two mapped tasks per image
FIRST_TASK, SECOND_TASK = "in_first_image", "in_second_image"


def dag_environment(first: str, second: str) -> dict[str, str]:
    """What the DAG file reads at parse time (the DAG processor's environment)."""
    return {"ECS_DEMO_FIRST_IMAGE": first, "ECS_DEMO_SECOND_IMAGE": second}


def launch_records(deployment: LocalDeployment) -> dict[str, dict[str, Any]]:
    """The endpoint's record of what each ECS task ran with, by task ARN."""
    with urllib.request.urlopen(f"{deployment.ecs_url}/_local_ecs/launches", timeout=30) as answer:
        return {str(r["taskArn"]): r for r in json.load(answer)}


def returned(deployment: LocalDeployment, run_id: str, row: dict[str, Any]) -> str:
    """The task's return value (what it saw in its container), or "-"."""
    path = (
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{row['task_id']}/xcomEntries/return_value"
        f"?map_index={row['map_index']}"
    )
    try:
        return str(deployment.api("GET", path).get("value", "-"))
    except (urllib.error.URLError, OSError, AttributeError):
        return "-"


def image_table(rows: list[dict[str, Any]], records: dict[str, dict[str, Any]], seen: dict[str, str]) -> str:
    """One line per task instance: state, the image its ECS task ran, its task definition, what it saw."""
    lines = [
        f"{'task':<20} {'state':<8} {'image (ECS task ran)':<48} {'task definition':<36} in the container"
    ]
    lines.append("-" * (len(lines[0]) + 24))
    for r in rows:
        name = f"{r['task_id']}[{r['map_index']}]"
        record = records.get(r["external_executor_id"] or "") or {}
        image = str((record.get("containers") or {}).get(CONTAINER, {}).get("image") or "-")
        definition = str(record.get("taskDefinitionArn") or "-").split(":task-definition/")[-1]
        lines.append(f"{name:<20} {r['state'] or '-':<8} {image:<48} {definition:<36} {seen.get(name, '-')}")
    return "\n".join(lines)


def ran_as_asked(
    rows: list[dict[str, Any]], records: dict[str, dict[str, Any]], first: str, second: str
) -> list[str]:
    """What went wrong: each task in the image it asked for, one task definition per image."""
    problems: list[str] = []
    definitions: dict[str, set[str]] = {first: set(), second: set()}
    for r in rows:
        wanted = first if r["task_id"] == FIRST_TASK else second
        record = records.get(r["external_executor_id"] or "")
        if record is None:
            problems.append(f"{r['task_id']}[{r['map_index']}]: no ECS task recorded")
            continue
        image = record["containers"][CONTAINER]["image"]
        if image != wanted:
            problems.append(f"{r['task_id']}[{r['map_index']}] ran {image}, asked for {wanted}")
        definitions[wanted].add(str(record["taskDefinitionArn"]))
    if any(len(arns) != 1 for arns in definitions.values()) or definitions[first] == definitions[second]:
        problems.append(f"expected one derived task definition per image, got {definitions}")
    return problems
