"""ASGI app factory: one server, one port (DESIGN.md URL map)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route

from app.api.iam import query_api
from app.api.router import control_plane
from app.config import Settings, get_settings
from app.formats.http import data_plane
from app.formats.registry import FORMATS
from app.observability import metrics
from app.observability.requests import RequestLogMiddleware
from app.observability.webhooks import run_deliverer
from app.services import jobs, revocation, usage
from app.services.context import Arca
from app.web.routes import routes as web_routes

ALL_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]


class AnyPath(Convertor):
    """Like `path`, but also matches control characters, so the format module (not the router)
    answers a path holding %0a with a 400 and a reason."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPath())


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


async def metrics_endpoint(request: Request):
    arca: Arca = request.app.state.arca
    expected = arca.settings.metrics_token
    if expected:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            return PlainTextResponse("metrics need Authorization: Bearer $ARCA_METRICS_TOKEN\n", status_code=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="arca-metrics"'})
    body, content_type = await run_in_threadpool(metrics.render)
    return Response(body, media_type=content_type)


def _accept_quality(accept: str, media: str) -> float:
    """The q the Accept header gives exactly `media` (0 when it does not name it)."""
    for item in accept.lower().split(","):
        name, *params = (p.strip() for p in item.split(";"))
        if name == media:
            q = next((v for k, _, v in (p.partition("=") for p in params) if k.strip() == "q"), "1")
            try:
                return float(q)
            except ValueError:
                return 0.0
    return 0.0


def describe(base_url: str) -> dict:
    """What `GET /` tells a program: where each door of this server is."""
    return {
        "service": "arca",
        "description": "Self-hosted package repository with the AWS CodeArtifact workflow (Maven, npm, PyPI)",
        "endpoints": {
            "controlPlane": f"{base_url}/v1/ (CodeArtifact REST API, SigV4)",
            "identity": f"{base_url}/ (POST: IAM and STS query protocol, SigV4)",
            "maven": f"{base_url}/{{domain}}/maven/{{repository}}/",
            "npm": f"{base_url}/{{domain}}/npm/{{repository}}/",
            "pypi": f"{base_url}/{{domain}}/pypi/{{repository}}/simple/ (upload: .../pypi/{{repository}}/)",
            "console": f"{base_url}/ui/",
            "health": f"{base_url}/healthz",
            "readiness": f"{base_url}/readyz",
            "metrics": f"{base_url}/metrics",
        },
        "documentation": "docs/ in the Arca distribution (README.md: the five-minute tour)",
    }


async def root(request: Request):
    """`POST /`: IAM and STS (the query protocol). `GET /`: a browser (it asks for text/html) goes
    to the console; any other client (JSON, `*/*`, no Accept) gets `describe`."""
    if request.method == "POST":
        return await query_api(request)
    accept = request.headers.get("accept") or ""
    html = _accept_quality(accept, "text/html")
    if html > 0 and html >= _accept_quality(accept, "application/json"):
        return RedirectResponse("/ui/", status_code=302)
    base = request.app.state.arca.settings.base_url or str(request.base_url).rstrip("/")
    return JSONResponse(describe(base), headers={"Vary": "Accept"})


def create_app(settings: Settings | None = None, *, migrate: bool = False) -> Starlette:
    settings = settings or get_settings()
    arca = Arca.from_settings(settings, migrate=migrate)
    metrics.watch_pool(arca.db.engine)

    @asynccontextmanager
    async def lifespan(app):
        tasks = [asyncio.create_task(usage.run_flusher(arca)), asyncio.create_task(jobs.run_scheduler(arca)),
                 asyncio.create_task(revocation.watch(arca))]
        if settings.webhooks:
            tasks.append(asyncio.create_task(run_deliverer(arca)))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if arca.remotes.client is not None:
            await arca.remotes.client.aclose()
        arca.db.dispose()

    routes = [
        Route("/", root, methods=["GET", "HEAD", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/v1/{path:path}", control_plane, methods=ALL_METHODS),
    ]
    routes += web_routes()
    endpoint = data_plane(FORMATS)
    routes += [
        Route("/{domain}/{fmt}/{repository}/{rest:anypath}", endpoint, methods=ALL_METHODS),
        Route("/{domain}/{fmt}/{repository}", endpoint, methods=ALL_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.arca = arca
    app.add_middleware(RequestLogMiddleware)
    return app
