"""The demo's two-image DAG (``--image A --other-image B``): its options, and how a run is judged and shown.

The run itself, in podman, is ``make demo ARGS="--image ... --other-image ..."`` (docs/demo.md); that the
podman runner starts a derived definition's own image is tests/image/test_local_ecs_podman.py's.
"""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor.demo import two_images
from ecs_executor.demo.__main__ import _arguments
from ecs_executor.demo.task_definitions import CONTAINER

FIRST, SECOND = "localhost/worker:1", "localhost/worker:1-b"
DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/airflow-worker-x{}:1"


@pytest.mark.parametrize("argv", [["--other-image", SECOND], ["--image", FIRST, "--other-image", FIRST]])
def test_other_image_needs_another_image_given_with_image(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        _arguments(argv)
    assert exc.value.code == 2
    assert "--other-image needs --image, and another image than --image's" in capsys.readouterr().err


def _row(task_id: str, map_index: int) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "map_index": map_index,
        "state": "success",
        "external_executor_id": f"arn:task/{task_id}/{map_index}",
    }


def _record(row: dict[str, Any], image: str, definition: str) -> tuple[str, dict[str, Any]]:
    arn = row["external_executor_id"]
    return arn, {"taskArn": arn, "taskDefinitionArn": definition, "containers": {CONTAINER: {"image": image}}}


ROWS = [
    _row(two_images.FIRST_TASK, 0),
    _row(two_images.FIRST_TASK, 1),
    _row(two_images.SECOND_TASK, 0),
    _row(two_images.SECOND_TASK, 1),
]


def test_each_task_in_its_image_on_one_definition_per_image_is_as_asked() -> None:
    records = dict(
        _record(
            r,
            *(
                (FIRST, DEFINITION.format("a"))
                if r["task_id"] == two_images.FIRST_TASK
                else (SECOND, DEFINITION.format("b"))
            ),
        )
        for r in ROWS
    )
    assert two_images.ran_as_asked(ROWS, records, FIRST, SECOND) == []
    table = two_images.image_table(ROWS, records, {"in_second_image[1]": "1: ECS_DEMO_IMAGE_MARK=b"})
    line = next(x for x in table.splitlines() if x.startswith("in_second_image[1]"))
    assert SECOND in line and "airflow-worker-xb:1" in line and line.endswith("ECS_DEMO_IMAGE_MARK=b")


def test_a_task_in_the_base_image_or_a_registration_per_task_is_not_as_asked() -> None:
    records = dict(_record(r, FIRST, DEFINITION.format(i)) for i, r in enumerate(ROWS))
    problems = two_images.ran_as_asked(ROWS, records, FIRST, SECOND)
    assert f"in_second_image[0] ran {FIRST}, asked for {SECOND}" in problems
    assert any(p.startswith("expected one derived task definition per image") for p in problems)
    assert two_images.ran_as_asked(ROWS, {}, FIRST, SECOND)[0] == "in_first_image[0]: no ECS task recorded"
