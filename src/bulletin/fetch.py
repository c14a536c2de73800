"""Reading an HTTP answer's body with a cap, so that a huge or endless answer costs at most a
chunk more than the cap in memory and on the wire."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

CHUNK = 64 * 1024


def read_capped(response: requests.Response, max_bytes: int) -> bytes:
    """The body of ``response`` (sent with ``stream=True``), read until it ends or holds more
    than ``max_bytes``: ``len(result) > max_bytes`` says it is too large, and the rest is
    never read.

    :raises requests.RequestException: the connection failed while the body was read.
    """
    data = bytearray()
    for chunk in response.iter_content(CHUNK):
        data += chunk
        if len(data) > max_bytes:
            break
    return bytes(data)
