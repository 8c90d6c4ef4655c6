"""Every route of the relay, in one place."""

from __future__ import annotations

from aiohttp import web

from . import views


def add_routes(app: web.Application) -> None:
    """Every route of the API."""
    app.router.add_post("/api/v1/reports", views.post_report)
    app.router.add_get("/api/v1/home", views.get_own_home)
    app.router.add_get("/api/v1/homes/{home_id}", views.get_home)
    app.router.add_get("/api/v1/openapi.json", views.openapi)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/metrics", views.metrics)
    app.router.add_get("/api/v1/alerts/{alert_id}/ack", views.ack_page)
    app.router.add_post("/api/v1/alerts/{alert_id}/ack", views.ack_alert)
