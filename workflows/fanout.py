"""An accepted event, fanned out into one delivery per subscribed endpoint.

Its id, `event/{account}/{event_id}`, is the idempotency key of ingest: a
second start with the same id finds this run, whose result says which body it
was started with and which deliveries it started.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.delivery import DeliveryInput, EventAcceptance, EventFanout
    from domain.records import DeliveryKind
    from workflows.delivery import start_delivery_child


def fanout_workflow_id(account: str, event_id: str) -> str:
    return f"event/{account}/{event_id}"


@workflow.defn
class EventFanoutWorkflow:
    @workflow.run
    async def run(self, fanout: EventFanout) -> EventAcceptance:
        refs = fanout.deliveries
        await asyncio.gather(
            *(
                start_delivery_child(
                    DeliveryInput(
                        delivery_id=ref.id,
                        kind=DeliveryKind.EVENT,
                        account=fanout.account,
                        endpoint_id=sub.endpoint_id,
                        endpoint_url=sub.url,
                        event=fanout.event,
                        max_attempts=sub.retry.max_attempts,
                    )
                )
                for ref, sub in zip(refs, fanout.subscriptions, strict=True)
            )
        )
        assert fanout.event.id is not None
        return EventAcceptance(event_id=fanout.event.id, fingerprint=fanout.fingerprint, deliveries=refs)
