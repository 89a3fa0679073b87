"""WebSocket echo server on Debian 12's python3-websockets (10.4).

Started by internal/peers.StartPythonWebsockets with /usr/bin/python3:

    python3 py-echo.py [--deflate] [--protocols=chat,superchat] [--max-size=BYTES]

The environment variable WS_ECHO_DEFLATE=1 also enables permessage-deflate.
It listens on 127.0.0.1 with a port chosen by the kernel and prints
"LISTENING <port>" on stdout once it accepts connections. It exits when its
standard input reaches EOF (the Go test process went away) or on SIGTERM.

websockets 10.4 serves through websockets.legacy: the handler takes one
argument, a received close frame is echoed back as it came (same code and
reason) and pings are answered automatically.
"""

import argparse
import asyncio
import os
import signal
import sys
import threading

# websockets.legacy.server is what websockets.serve is in 10.x-13.x (Debian
# 12 ships 10.4); later releases keep it under this name, deprecated.
from websockets.exceptions import ConnectionClosed
from websockets.legacy.server import serve


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--deflate", action="store_true")
    p.add_argument("--protocols", default="chat,superchat")
    p.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    args = p.parse_args()
    if os.environ.get("WS_ECHO_DEFLATE") == "1":
        args.deflate = True
    args.protocols = [s for s in args.protocols.split(",") if s]
    return args


def first_offered(client_subprotocols, server_subprotocols):
    """Answer with the first protocol the client offers that we support."""
    for p in client_subprotocols:
        if p in server_subprotocols:
            return p
    return None


async def echo(ws):
    try:
        async for message in ws:
            # str is sent back as a text frame, bytes as a binary frame.
            await ws.send(message)
    except ConnectionClosed:
        pass


def watch_stdin(loop, stop):
    """Stop when the parent closes our stdin (or dies)."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    loop.call_soon_threadsafe(stop.set_result, None)


async def main():
    args = parse_args()
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    threading.Thread(target=watch_stdin, args=(loop, stop), daemon=True).start()

    async with serve(
        echo,
        "127.0.0.1",
        0,
        subprotocols=args.protocols or None,
        select_subprotocol=first_offered,
        compression="deflate" if args.deflate else None,
        max_size=args.max_size,
        max_queue=16,
        # Large messages: read and write in big chunks.
        read_limit=2**20,
        write_limit=2**20,
        # No keepalive pings: a test client that is not reading must not be
        # disconnected for missing a pong.
        ping_interval=None,
        ping_timeout=None,
        close_timeout=2,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        try:
            await stop
        except asyncio.CancelledError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
