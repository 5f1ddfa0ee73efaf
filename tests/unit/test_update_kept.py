"""An update the server aborted (it cleared the workflow's update registry) or refused for the
updates already in flight is sent again, with the same update id, so that the workflow runs it
once; any other error is the answer at once."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from infra.temporal import update_kept

ABORTED = RPCError("workflow update was aborted", RPCStatusCode.UNAVAILABLE, b"")
# As the SDK raises it from an update-with-start's failed operation, and from a lone update.
IN_FLIGHT = RPCError(
    "Update failed: limit on number of concurrent in-flight updates has been reached (10)",
    RPCStatusCode.RESOURCE_EXHAUSTED,
    b"",
)


# As the server (1.27+) answers an update whose workflow task failed before it was accepted.
DROPPED = RPCError(
    "Unable to perform workflow execution update due to unexpected workflow task failure.",
    RPCStatusCode.FAILED_PRECONDITION,
    b"",
)


class Server:
    """Answers each send with the next of `answers` (an error is raised), noting its update id."""

    def __init__(self, *answers: str | RPCError) -> None:
        self._answers = list(answers)
        self.ids: list[str] = []

    async def send(self, *, id: str) -> str:
        self.ids.append(id)
        answer = self._answers.pop(0)
        if isinstance(answer, RPCError):
            raise answer
        return answer


async def test_an_aborted_update_is_sent_again_with_the_same_id() -> None:
    server = Server(ABORTED, ABORTED, "created")
    assert await update_kept(server.send) == "created"
    assert len(server.ids) == 3 and len(set(server.ids)) == 1


async def test_an_update_refused_for_the_updates_in_flight_is_sent_again_with_the_same_id() -> None:
    server = Server(IN_FLIGHT, ABORTED, IN_FLIGHT, "slot")
    assert await update_kept(server.send) == "slot"
    assert len(server.ids) == 4 and len(set(server.ids)) == 1


async def test_an_update_dropped_with_its_failed_workflow_task_is_sent_again_with_the_same_id() -> None:
    """CI once answered a PATCH 503 so: the registry's task was lost, the change never made."""
    server = Server(DROPPED, "patched")
    assert await update_kept(server.send) == "patched"
    assert len(server.ids) == 2 and len(set(server.ids)) == 1


async def test_each_update_has_its_own_id() -> None:
    first, second = Server("a"), Server("b")
    await update_kept(first.send)
    await update_kept(second.send)
    assert first.ids != second.ids


@pytest.mark.parametrize(
    "error",
    [
        RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""),  # an outage: the client retried it already
        RPCError("too many outstanding requests", RPCStatusCode.RESOURCE_EXHAUSTED, b""),
        RPCError("workflow update was aborted by closing workflow", RPCStatusCode.NOT_FOUND, b""),
        RPCError("workflow execution already completed", RPCStatusCode.FAILED_PRECONDITION, b""),
    ],
)
async def test_other_errors_are_the_answer_at_once(error: RPCError) -> None:
    server = Server(error, "never")
    with pytest.raises(RPCError) as raised:
        await update_kept(server.send)
    assert raised.value is error and len(server.ids) == 1


async def test_aborts_past_the_budget_are_the_answer() -> None:
    server = Server(*[ABORTED] * 20)
    with pytest.raises(RPCError) as raised:
        await update_kept(server.send, budget_seconds=0.25)
    assert raised.value is ABORTED
    assert len(server.ids) == 2  # after 0.1 s, the next pause (0.2 s) would pass the budget
