"""The sample orders sent on an endpoint's first connection and by its Test button."""

from __future__ import annotations

from domain.events import (
    Address,
    EventType,
    Order,
    OrderError,
    OrderErrorEvent,
    OrderShippedEvent,
    Shipment,
    Tracking,
    TrackingUpdateEvent,
)

# The order of the seed's Test example.
SAMPLE_ORDER = Order(
    order_id="24957298",
    transaction_id="48572_1",
    carrier="FedEx",
    tracking_number="WZ116539070",
    marketplace_id="0",
    marketplace_platform="Manual shipment",
    external_link="",
    from_address=Address(company="John Doe srl.", country="IT"),
    to_address=Address(company="", country="IT"),
    is_return=False,
)


def sample_tracking_update(event_id: str) -> TrackingUpdateEvent:
    """What `Test` sends: the seed's example, value for value."""
    return TrackingUpdateEvent(
        id=event_id,
        event=EventType.TRACKING_UPDATE,
        order=SAMPLE_ORDER,
        tracking=Tracking(
            date=1622671204,
            message="Shipment delivered",
            city="Florence",
            code=6,
            est_delivery_date=0,
            first_status_date=1622152801,
            late=False,
        ),
    )


def sample_order_shipped(event_id: str) -> OrderShippedEvent:
    """What a new endpoint receives first, whatever events it chose."""
    return OrderShippedEvent(
        id=event_id,
        event=EventType.ORDER_SHIPPED,
        order=SAMPLE_ORDER,
        shipment=Shipment(date=1622152801, label_url="https://labels.example.com/24957298.pdf"),
    )


def sample_order_error(event_id: str) -> OrderErrorEvent:
    """An error on the same order (the seed shows no ORDER_ERROR example; CONTRACT §2 gives its shape)."""
    return OrderErrorEvent(
        id=event_id,
        event=EventType.ORDER_ERROR,
        order=SAMPLE_ORDER,
        error=OrderError(date=1622152801, message="Carrier rejected the shipment: invalid postcode"),
    )


# What `Test` can send: the order events, each as its sample.
SAMPLES = {
    EventType.ORDER_SHIPPED: sample_order_shipped,
    EventType.ORDER_ERROR: sample_order_error,
    EventType.TRACKING_UPDATE: sample_tracking_update,
}
