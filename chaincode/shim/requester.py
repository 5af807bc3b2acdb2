"""The seam between the stub and whatever answers its requests.

On a real stream the session tags each request with the transaction's txid and
channel_id and waits for the peer's answer; in `chaincode.testing` an in-memory peer
answers at once. The stub only needs this one call.
"""

from __future__ import annotations

from typing import Protocol


class PeerRequester(Protocol):
    """Sends one state request of the current transaction and returns the answer."""

    async def request(self, message_type: int, payload: bytes) -> bytes:
        """The RESPONSE payload for a request of `message_type` with `payload`.

        Raises:
            PeerRequestError: the peer answered ERROR (its text is the message) or did
                not answer in time.
            StreamClosedError: the stream ended before the answer arrived.
        """
        ...
