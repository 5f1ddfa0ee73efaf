"""`/codec`: the codec server the Temporal Web UI calls to show operators decrypted payloads
(served by api/codec_server.py on the operators' listener only).

The protocol is Temporal's: POST `{"payloads": [...]}` (protobuf JSON) to
`/codec/encode` or `/codec/decode`, answered in the same shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, Request, Response
from google.protobuf.json_format import MessageToJson, Parse, ParseError
from temporalio.api.common.v1 import Payload, Payloads

from api.errors import invalid_field

router = APIRouter(prefix="/codec", tags=["codec"])

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


async def _apply(request: Request, transform: Transform) -> Response:
    try:
        payloads = Parse(await request.body(), Payloads())
    except (ParseError, UnicodeDecodeError):  # protobuf decodes the bytes outside its own errors
        # The parser's message can quote what it was given: say what is wrong, never repeat it.
        return invalid_field("payloads", "is not a Payloads document of Temporal's codec protocol")
    try:
        result = await transform(list(payloads.payloads))
    except ValueError as err:  # unknown key or tampered data: say so, do not crash
        return invalid_field("payloads", str(err))
    return Response(MessageToJson(Payloads(payloads=result)), media_type="application/json")


@router.post("/decode")
async def decode(request: Request) -> Response:
    return await _apply(request, request.app.state.codec.decode)


@router.post("/encode")
async def encode(request: Request) -> Response:
    return await _apply(request, request.app.state.codec.encode)
