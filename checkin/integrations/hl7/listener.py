"""``checkin hl7 listen``: an asyncio MLLP server in front of ``Feed.handle``.

MLLP frames each message as ``<VT> message <FS><CR>`` over a TCP connection and waits for the
ACK before sending the next, so one connection is handled in order; connections are handled
side by side. The database work is synchronous and runs in a worker thread, so a slow commit
never stalls the other connections. Several listeners (processes or hosts) may run against one
PostgreSQL database: ``Feed`` makes a message that reaches two of them count once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from hl7.mllp import InvalidBlockError, start_hl7_server

from checkin.integrations.hl7.feed import Feed

log = logging.getLogger("checkin.integrations.hl7")
MAX_MESSAGE = 1 << 20  # 1 MiB: far above any SIU/ADT message, and a bound on a bad peer
IDLE_TIMEOUT = 600.0  # seconds a connection may stay silent before it is closed


def decode(block: bytes) -> str:
    """HL7 v2 is ASCII unless MSH-18 says otherwise; engines send UTF-8 or Windows-1252."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("cp1252", errors="replace")


async def _connection(feed: Feed, reader: Any, writer: Any) -> None:
    peer = writer.get_extra_info("peername")
    try:
        while True:
            try:
                block = await asyncio.wait_for(reader.readblock(), IDLE_TIMEOUT)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            except (InvalidBlockError, ValueError):
                # Not MLLP (or over the size limit): there is no frame to acknowledge.
                log.warning(
                    "mllp frame refused",
                    extra={"event": "hl7.bad_frame", "peer": str(peer[0] if peer else "")},
                )
                return
            outcome = await asyncio.to_thread(feed.handle, decode(block))
            writer.writeblock(outcome.ack.encode("utf-8"))
            await writer.drain()
    finally:
        writer.close()


async def serve(
    feed: Feed,
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Listen until ``stop`` is set; ``ready(port)`` once accepting (port 0 picks a free one)."""
    server = await start_hl7_server(lambda r, w: _connection(feed, r, w), host, port, limit=MAX_MESSAGE)
    bound = server.sockets[0].getsockname()[1]
    log.info("hl7 listener started", extra={"event": "hl7.listening", "port": bound})
    if ready is not None:
        ready(bound)
    async with server:
        await stop.wait()
    log.info("hl7 listener stopped", extra={"event": "hl7.stopped", "port": bound})
