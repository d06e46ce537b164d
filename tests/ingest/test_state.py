from __future__ import annotations

import pytest
from heron.ingest.state import IllegalTransitionError, StreamState, StreamStateMachine

S = StreamState


@pytest.mark.parametrize(
    "path",
    [
        [S.PLAYING, S.EOS],
        [S.PLAYING, S.RECONNECTING, S.RECONNECTING, S.PLAYING, S.EOS],
        [S.RECONNECTING, S.ERROR],
        [S.ERROR],
        [S.PLAYING, S.ERROR],
    ],
)
def test_legal_paths(path: list[StreamState]) -> None:
    machine = StreamStateMachine("cam")
    for state in path:
        machine.to(state)
    assert machine.state is path[-1]
    assert machine.finished is (path[-1] in (S.EOS, S.ERROR))


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([S.PLAYING, S.EOS], S.PLAYING),  # EOS is final
        ([S.ERROR], S.RECONNECTING),  # so is ERROR
        ([S.PLAYING], S.PLAYING),
        ([S.PLAYING], S.CONNECTING),
        ([], S.CONNECTING),
    ],
)
def test_illegal_moves_are_refused(path: list[StreamState], bad: StreamState) -> None:
    machine = StreamStateMachine("cam")
    for state in path:
        machine.to(state)
    with pytest.raises(IllegalTransitionError, match=f"stream cam: cannot go from .* to {bad}"):
        machine.to(bad)
