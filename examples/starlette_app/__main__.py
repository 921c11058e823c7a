"""``python -m examples.starlette_app [--workers N]``: serve the example app with uvicorn.

Host and port come from ``WHOP_REDIRECT_URI`` (default http://127.0.0.1:8000/...), so
the address the app listens on is always the one Whop redirects the browser to.
"""

from __future__ import annotations

import argparse
import logging
from urllib.parse import urlsplit

import uvicorn

from whop_oauth import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.starlette_app")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    redirect = urlsplit(Settings.from_env().redirect_uri)
    host, port = redirect.hostname or "127.0.0.1", redirect.port or 8000
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    print(f"Serving the whop_oauth example at http://{host}:{port}/")
    uvicorn.run(
        "examples.starlette_app.app:app",
        host=host,
        port=port,
        workers=args.workers,
        # The access log prints query strings; the callback's is short-lived but secret.
        access_log=False,
    )


if __name__ == "__main__":
    main()
