"""The framing of the binary payloads Components v2 widgets get (big_map.py, patch_hits.py): 4 magic bytes, the JSON
header's length (uint32 LE), the header padded with spaces to 4 bytes (so the body's typed arrays can start aligned),
then the body."""

from __future__ import annotations

import json


def frame(magic: bytes, header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 4)
    return magic + len(text).to_bytes(4, "little") + text + body


def unframe(magic: bytes, payload: bytes, what: str) -> tuple[dict, int]:
    """(the header, where the body starts); ValueError when `payload` is not framed with `magic` (`what` names it)."""
    if payload[:4] != magic:
        raise ValueError(f"Not a {what} payload.")
    length = int.from_bytes(payload[4:8], "little")
    return json.loads(payload[8 : 8 + length]), 8 + length
