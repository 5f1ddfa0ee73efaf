"""CONTRACT §2's example event: one copy for the unit and the integration tests."""

from __future__ import annotations

from typing import Any

CONTRACT_ORDER: dict[str, Any] = {
    "order_id": "24957298",
    "transaction_id": "48572_1",
    "carrier": "FedEx",
    "tracking_number": "WZ116539070",
    "marketplace_id": "0",
    "marketplace_platform": "Manual shipment",
    "external_link": "",
    "from_address": {"company": "John Doe srl.", "country": "IT"},
    "to_address": {"company": "", "country": "IT"},
    "is_return": False,
}

CONTRACT_TRACKING: dict[str, Any] = {
    "date": 1622671204,
    "message": "Shipment delivered",
    "city": "Florence",
    "code": 6,
    "est_delivery_date": 0,
    "first_status_date": 1622152801,
    "late": False,
}


CONTRACT_EVENT: dict[str, Any] = {
    "id": "evt-2021-06-02-000123",
    "event": "TRACKING_UPDATE",
    "order": CONTRACT_ORDER,
    "tracking": CONTRACT_TRACKING,
}
