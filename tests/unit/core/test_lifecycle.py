"""Pure: the tracked try's states and the transitions allowed between them."""

from __future__ import annotations

import pytest

from ecs_executor.core.lifecycle import ALLOWED, IllegalTransition, Tracked, TryState
from ecs_executor.request.run_task import TryIdentity

S = TryState


def tracked(state: TryState = S.QUEUED) -> Tracked:
    t = Tracked("k", TryIdentity("d", "t", "r", 1), "cluster")
    t.state = state
    return t


def test_the_happy_path_and_a_relaunch() -> None:
    t = tracked()
    for state in (S.LAUNCHING, S.RELAUNCHING, S.LAUNCHING, S.PENDING, S.RUNNING, S.DONE):
        t.move(state)
    assert t.state is S.DONE and not t.live


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.QUEUED, S.RUNNING),  # never described before RunTask answered
        (S.RUNNING, S.PENDING),  # ECS never goes backwards
        (S.RUNNING, S.LAUNCHING),  # a relaunch always waits first
        (S.RUNNING, S.RELAUNCHING),  # a try seen RUNNING is never relaunched
        (S.DONE, S.RUNNING),  # nothing after the final word
        (S.STOPPING, S.RUNNING),  # a revoked try is not reported as running
        (S.ADOPTED, S.LAUNCHING),  # we never launch what we adopted
    ],
)
def test_illegal_transitions_are_refused(start: TryState, to: TryState) -> None:
    t = tracked(start)
    with pytest.raises(IllegalTransition):
        t.move(to)
    assert t.state is start


def test_every_live_state_can_end_or_be_revoked() -> None:
    for state in S:
        if state in (S.DONE, S.STOPPING, S.EXITED):
            continue
        assert {S.DONE, S.STOPPING} <= ALLOWED[state]
    assert ALLOWED[S.STOPPING] == {S.DONE}
    assert ALLOWED[S.DONE] == frozenset()


def test_watched_states() -> None:
    """A reported try's ECS task is only watched until it stops; a superseded one may also be stopped.
    Only a task that has an ECS task (launched or adopted) can become either."""
    assert ALLOWED[S.EXITED] == {S.DONE}
    assert ALLOWED[S.SUPERSEDED] == {S.STOPPING, S.DONE}
    for state in (S.PENDING, S.RUNNING, S.ADOPTED):
        assert {S.EXITED, S.SUPERSEDED} <= ALLOWED[state]
    for state in (S.QUEUED, S.LAUNCHING, S.RELAUNCHING):
        assert S.EXITED not in ALLOWED[state] and S.SUPERSEDED not in ALLOWED[state]
    t = tracked(S.RUNNING)
    t.move(S.EXITED)
    assert t.watched and not t.live
    with pytest.raises(IllegalTransition):
        t.move(S.RUNNING)  # nothing is reported after the final word


def test_moving_to_the_same_state_is_a_no_op() -> None:
    t = tracked(S.RUNNING)
    t.move(S.RUNNING)
    assert t.state is S.RUNNING
