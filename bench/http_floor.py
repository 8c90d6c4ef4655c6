"""The HTTP floor for bench/relay_ingest.py: a bare aiohttp endpoint that only parses the JSON.

Run as ``python bench/http_floor.py PORT``; answers POST /api/v1/reports with 202 (and GET
/healthz with 200, so a load balancer's health check passes: bench/scale.py).
"""

from __future__ import annotations

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    """Parse the body as the relay would, store nothing."""
    body = await request.json()
    return web.json_response({"status": "stored", "report_id": body["report_id"]}, status=202)


async def healthz(_request: web.Request) -> web.Response:
    """Always healthy (no database behind it)."""
    return web.json_response({"status": "ok"})


def main() -> None:
    """Serve until killed."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_post("/api/v1/reports", accept)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
