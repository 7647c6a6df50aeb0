"""The console's pages. Each handler is sync (it runs in the thread pool, like every DB call) and
gets a `Ctx`; `page()` wraps it with the session, the CSRF check for POSTs and error pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.domain.coords import Coordinates
from app.domain.errors import AccessDenied, ArcaError, NotFound, PayloadTooLarge, TooManyRequests, ValidationError
from app.formats.http import BodyReader
from app.observability.context import note
from app.services import console, identity
from app.services.context import Arca
from app.services.packages import PackageAt
from app.web import readme, render, session, snippets
from app.web.render import html

CSRF_FIELD = "csrf"

# Console action -> (button label, past tense for the message after it)
LABELS = {
    "publish": ("Publish", "published"),
    "restore": ("Restore", "restored to Published"),
    "unlist": ("Unlist", "unlisted"),
    "archive": ("Archive", "archived"),
    "dispose": ("Dispose", "disposed (assets deleted)"),
    "delete": ("Delete", "deleted"),
}
CONFIRM_TEXT = {
    "publish": "Consumers will see this version in indexes and metadata and can download it.",
    "restore": "The version becomes Published again: listed and downloadable.",
    "unlist": "The version disappears from indexes and metadata; exact downloads keep working.",
    "archive": "The version disappears and its files are no longer served. You can restore it later.",
    "dispose": "The version's files are deleted; the version stays as a Disposed record. This cannot be undone.",
    "delete": "The version and its files are removed completely. This cannot be undone.",
}


@dataclass
class Ctx:
    request: Request
    arca: Arca
    ws: session.WebSession
    form: dict = field(default_factory=dict)

    @property
    def principal(self):
        return self.ws.principal

    def q(self, name: str) -> str:
        return (self.request.query_params.get(name) or "").strip()

    def base_url(self) -> str:
        return self.arca.settings.base_url or str(self.request.base_url).rstrip("/")

    def render(self, template: str, http_status: int = 200, headers: dict | None = None, **context) -> Response:
        context.update(user=self.principal, csrf=self.ws.csrf_token(self.arca), csrf_field=CSRF_FIELD)
        return html(template, context, http_status, headers)


def _finish(arca: Arca, request: Request, ws: session.WebSession, response: Response) -> Response:
    for k, v in render.SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    response.headers.setdefault("Cache-Control", "no-store")
    if ws.fresh:
        session.save(arca, request, response, ws)
    return response


def page(handler, *, public: bool = False):
    """An endpoint: session, sign-in requirement, CSRF on POST, ArcaError -> error page."""

    async def endpoint(request: Request) -> Response:
        arca: Arca = request.app.state.arca
        try:
            ws = await run_in_threadpool(session.load, arca, request)
        except ArcaError as exc:  # the database is down: no session to read, say so plainly
            ws = session.WebSession(nonce="-")
            return _finish(arca, request, ws, _error_page(Ctx(request, arca, ws), exc))
        form = {}
        if request.method == "POST":
            try:
                form = await read_form(request, arca.settings.console_max_form_bytes)
            except PayloadTooLarge as exc:
                return _finish(arca, request, ws, _error_page(Ctx(request, arca, ws), exc))
        ctx = Ctx(request, arca, ws, form)
        if ws.principal is not None:
            note(principal=ws.principal.arn)
        elif not public:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method == "POST":
                response = ctx.render("error.html", http_status=403, title="Signed out",
                                      problem="Your session has ended. Sign in again and repeat the action.")
            else:
                response = RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303)
            return _finish(arca, request, ws, response)
        if request.method == "POST" and not ws.csrf_ok(arca, form.get(CSRF_FIELD)):
            response = ctx.render("error.html", http_status=403, title="Forbidden",
                                  problem="The form's security token is missing or wrong. Reload the page and try again.")
            return _finish(arca, request, ws, response)
        try:
            response = await run_in_threadpool(handler, ctx)
        except ArcaError as exc:
            response = _error_page(ctx, exc)
        return _finish(arca, request, ws, response)

    return endpoint


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """A POSTed form, read whole before it is parsed. A body of more than `limit` bytes is refused
    with 413 unparsed, and unread when its Content-Length already says so. Console forms hold a few
    short fields; the sign-in form is open to anyone, so its size must not be theirs to choose."""
    body = await BodyReader(request).read(limit, "The form")

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 413: "Too large",
          429: "Too many attempts", 503: "Unavailable"}


def _error_page(ctx: Ctx, exc: ArcaError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    status = exc.status if exc.status < 500 or exc.status == 503 else 500
    return ctx.render("error.html", http_status=status, headers=headers,
                      title=TITLES.get(exc.status, "Error"), problem=exc.message)


# ---- sign in / out ------------------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    # Only paths inside the console: no scheme, no host, no "//evil" or "/\\evil".
    if target and target.startswith("/ui/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/ui/"


def login(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        if ctx.principal is not None:
            return RedirectResponse(_safe_next(ctx.q("next")), status_code=303)
        return ctx.render("login.html", next=_safe_next(ctx.q("next")), error=None, name="")
    name = ctx.form.get("username", "").strip()
    note(operation="SignIn")
    client = ctx.request.client
    try:
        ws = session.authenticate(ctx.arca, name, ctx.form.get("password", ""), client.host if client else None)
    except TooManyRequests as exc:
        return ctx.render("login.html", http_status=429, headers={"Retry-After": str(exc.retry_after)},
                          next=_safe_next(ctx.form.get("next")), name=name, error=exc.message)
    if ws is None:
        return ctx.render("login.html", http_status=401, next=_safe_next(ctx.form.get("next")), name=name,
                          error="Wrong user name or password (passwords are set with `arca admin set-password`).")
    ctx.ws.__dict__.update(ws.__dict__)  # the new session replaces the old one (new nonce)
    note(principal=ws.principal.arn)
    return RedirectResponse(_safe_next(ctx.form.get("next")), status_code=303)


def logout(ctx: Ctx) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    session.clear(ctx.request, response)
    ctx.ws.fresh = False
    return response


# ---- browsing ----------------------------------------------------------------------------------

def domains(ctx: Ctx) -> Response:
    data = console.domains_page(ctx.arca, ctx.principal, ctx.q("page"))
    return ctx.render("domains.html", **data, params={})


def domain(ctx: Ctx) -> Response:
    name = ctx.request.path_params["domain"]
    data = console.repositories_page(ctx.arca, ctx.principal, name, ctx.q("page"))
    return ctx.render("domain.html", domain=name, **data, params={})


def search(ctx: Ctx) -> Response:
    name = ctx.request.path_params["domain"]
    text = ctx.q("q")[:200]
    data = console.search_page(ctx.arca, ctx.principal, name, text, ctx.q("page"))
    return ctx.render("search.html", domain=name, query=text, **data, params={"q": text})


def repository(ctx: Ctx) -> Response:
    dn, rn = ctx.request.path_params["domain"], ctx.request.path_params["repository"]
    params = {"format": ctx.q("format"), "namespace": ctx.q("namespace"), "prefix": ctx.q("prefix")}
    data = console.repository_page(ctx.arca, ctx.principal, dn, rn, params["format"] or None,
                                   params["namespace"] or None, params["prefix"] or None, ctx.q("page"))
    return ctx.render("repository.html", domain=dn, **data, params=params, formats=console.FORMATS)


def _package_at(ctx: Ctx, source: dict) -> PackageAt:
    """The package a page or form names: format and name required, namespace optional."""
    fmt, ns, name = ((source.get(k) or "").strip() for k in ("format", "namespace", "name"))
    if not fmt or not name:
        raise ValidationError("format and name are required")
    path = ctx.request.path_params
    return PackageAt(path["domain"], path["repository"], Coordinates(fmt, ns, name))


def _pkg_params(at: PackageAt) -> dict:
    return {"format": at.coords.format, "namespace": at.coords.namespace, "name": at.coords.name}


def package(ctx: Ctx) -> Response:
    at = _package_at(ctx, dict(ctx.request.query_params))
    data = console.versions_page(ctx.arca, ctx.principal, at, ctx.q("page"))
    done = ctx.q("done")
    message = None
    if done in LABELS and ctx.q("v"):
        message = f"Version {ctx.q('v')} {LABELS[done][1]}."
    elif done == "origin":
        message = "Origin controls saved."
    return ctx.render("package.html", domain=at.domain, repository=at.repository, **data, params=_pkg_params(at),
                      message=message)


def version(ctx: Ctx, error: str | None = None, status: int = 200, confirm: str | None = None) -> Response:
    source = dict(ctx.request.query_params) if ctx.request.method == "GET" else ctx.form
    at = _package_at(ctx, source)
    ver = (source.get("version") or "").strip()
    data = console.version_page(ctx.arca, ctx.principal, at, ver)
    confirm = confirm if confirm is not None else ctx.q("confirm")
    if confirm and confirm not in data["actions"]:
        confirm = None
    done = ctx.q("done") if ctx.request.method == "GET" else ""
    message = f"Version {ver} {LABELS[done][1]}." if done in LABELS else None
    fmt, ns, name = at.coords.format, at.coords.namespace, at.coords.name
    install = snippets.install_snippets(fmt, ns, name, ver)
    data["readme"] = readme.render(data["readme"], readme.kind_of(fmt, data.pop("readme_content_type")))
    return ctx.render("version.html", http_status=status, domain=at.domain, repository=at.repository, **data,
                      install=install, confirm=confirm, confirm_text=CONFIRM_TEXT.get(confirm or ""),
                      labels=LABELS, message=message, error=error,
                      endpoint=snippets.endpoint(ctx.base_url(), at.domain, fmt, at.repository))


# ---- changes -------------------------------------------------------------------------------------

def version_action(ctx: Ctx) -> Response:
    at = _package_at(ctx, ctx.form)
    ver, action = ctx.form.get("version", "").strip(), ctx.form.get("action", "")
    note(operation=console.api_action(action).split(":", 1)[1])
    out = console.change_version(ctx.arca, ctx.principal, at, ver, action)
    failed = out["failedVersions"].get(ver)
    if failed and failed["errorCode"] == "NOT_FOUND":
        raise NotFound(failed["errorMessage"], resource_id=ver, resource_type="package-version")
    if failed:
        return version(ctx, error=f"{LABELS[action][0]} failed: {failed['errorMessage']}", status=409)
    if action == "delete":
        return RedirectResponse(render.package_url(at.domain, at.repository, _pkg_params(at), done=action, v=ver),
                                status_code=303)
    return RedirectResponse(render.version_url(at.domain, at.repository, _pkg_params(at), ver, done=action),
                            status_code=303)


def origin(ctx: Ctx) -> Response:
    at = _package_at(ctx, ctx.form)
    note(operation="PutPackageOriginConfiguration")
    console.put_origin(ctx.arca, ctx.principal, at, ctx.form.get("publish", ""), ctx.form.get("upstream", ""))
    return RedirectResponse(render.package_url(at.domain, at.repository, _pkg_params(at), done="origin"),
                            status_code=303)


def connect(ctx: Ctx) -> Response:
    """Connection instructions; POST issues a token for the signed-in user and fills it in."""
    dn, rn = ctx.request.path_params["domain"], ctx.request.path_params["repository"]
    client = (ctx.form.get("client") if ctx.request.method == "POST" else ctx.q("client")) or "mvn"
    if client not in snippets.CLIENTS:
        raise NotFound(f"No instructions for client {client!r}")
    data = console.connect_page(ctx.arca, ctx.principal, dn, rn)
    header, can_token = data["repo"], data["can_token"]
    token = expiration = None
    if ctx.request.method == "POST":
        if not can_token:
            raise AccessDenied(f"You ({ctx.principal.name}) may not get authorization tokens for domain {dn}")
        note(operation="GetAuthorizationToken")
        issued = identity.issue_token(ctx.arca, ctx.principal, dn, None)
        token, expiration = issued["authorizationToken"], issued["expiration"]
    steps = snippets.connection(client, ctx.base_url(), dn, rn, token)
    fmt = snippets.CLIENT_FORMAT[client]
    return ctx.render("connect.html", domain=dn, repo=header, client=client, clients=snippets.CLIENTS, steps=steps,
                      token=token, expiration=expiration, can_token=can_token,
                      endpoint=snippets.endpoint(ctx.base_url(), dn, fmt, rn) if fmt else None)
