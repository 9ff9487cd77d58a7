"""Request and reply bodies in either format OpenD accepts: protobuf (0) or JSON (1).

A reply goes back in the format its request came in, as the real gateway does.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from proto_client.framing import PROTO_FMT_JSON, PROTO_FMT_PROTOBUF

M = TypeVar("M", bound=Message)


class BodyError(ValueError):
    """A request body that does not parse as its proto's Request; answered with retType -500."""


def decode_body(body: bytes, proto_fmt: int, message_type: type[M]) -> M:
    message = message_type()
    try:
        if proto_fmt == PROTO_FMT_PROTOBUF:
            message.ParseFromString(body)
        elif proto_fmt == PROTO_FMT_JSON:
            json_format.Parse(body.decode("utf-8"), message, ignore_unknown_fields=True)
        else:
            raise BodyError(f"unknown body format {proto_fmt}: expected 0 (protobuf) or 1 (JSON)")
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        raise BodyError(f"cannot parse the request body: {exc}") from exc
    if not message.IsInitialized():
        # protobuf's runtime has it; types-protobuf leaves it out.
        missing = ", ".join(message.FindInitializationErrors())  # type: ignore[attr-defined]
        raise BodyError(f"request is missing required fields: {missing}")
    return message


def encode_body(message: Message, proto_fmt: int) -> bytes:
    if proto_fmt == PROTO_FMT_JSON:
        return json_format.MessageToJson(message).encode("utf-8")
    return message.SerializeToString()
