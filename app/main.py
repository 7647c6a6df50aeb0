"""ASGI app factory: one server, one port (DESIGN.md URL map)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from app.api.router import control_plane
from app.config import Settings, get_settings
from app.formats.http import data_plane
from app.services.context import Arca

ALL_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]


async def healthz(request: Request):
    return PlainTextResponse("ok\n")


async def readyz(request: Request):
    arca: Arca = request.app.state.arca
    problems = {}
    for name, check in (("database", arca.db.ping), ("blob_store", arca.blobs.ping)):
        try:
            await run_in_threadpool(check)
        except Exception as exc:  # readiness reports, it does not raise
            problems[name] = f"{type(exc).__name__}: {exc}"
    if problems:
        return JSONResponse({"ready": False, "problems": problems}, status_code=503)
    return JSONResponse({"ready": True})


def create_app(settings: Settings | None = None, *, migrate: bool = False) -> Starlette:
    settings = settings or get_settings()
    arca = Arca.from_settings(settings, migrate=migrate)

    @asynccontextmanager
    async def lifespan(app):
        yield
        arca.db.dispose()

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/v1/{path:path}", control_plane, methods=ALL_METHODS),
    ]
    try:
        from app.web import routes as web_routes

        routes += web_routes()
    except ImportError:
        pass
    routes += [
        Route("/{domain}/{fmt}/{repository}/{rest:path}", data_plane, methods=ALL_METHODS),
        Route("/{domain}/{fmt}/{repository}", data_plane, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.arca = arca
    return app
