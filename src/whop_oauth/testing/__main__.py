"""``python -m whop_oauth.testing``: serve the mock Whop on a loopback port.

Prints one line, ``mock-whop ready <issuer>``, once it accepts connections, and runs
until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from ._mock_model import MockClient
from ._mock_server import bind_socket, serve_socket, url_host
from ._mock_whop import MockWhop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m whop_oauth.testing", description="Serve a mock Whop OAuth provider."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port, 0 for a free one")
    parser.add_argument("--issuer", help="issuer URL (default: http://HOST:PORT)")
    parser.add_argument("--consent", action="store_true", help="show an Approve/Deny page")
    parser.add_argument("--client-id", default="app_mock")
    parser.add_argument("--client-secret", help="makes the client confidential")
    parser.add_argument("--access-token-ttl", type=int, default=3600, metavar="SECONDS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sock = bind_socket(args.host, args.port)
    issuer = args.issuer or f"http://{url_host(args.host)}:{sock.getsockname()[1]}"
    client = MockClient(args.client_id, client_secret=args.client_secret)
    mock = MockWhop(
        issuer,
        clients={client.client_id: client},
        consent=args.consent,
        access_token_ttl=args.access_token_ttl,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with serve_socket(mock._served_app(), sock):
        print(f"mock-whop ready {issuer}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
