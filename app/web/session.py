"""The console's sign-in session and CSRF tokens.

The cookie holds {user id, session nonce, password fingerprint}, signed with the server's key
(itsdangerous, timestamped, 12 h). Nothing is stored server-side: signing out deletes the cookie,
and changing the password (`arca admin set-password`) ends every session of that user, because
the fingerprint no longer matches. A visitor who is not signed in still gets a nonce (so the
sign-in form has a CSRF token too); signing in issues a new one (no session fixation).

CSRF token = HMAC(key, "csrf:" + nonce), sent in a hidden field of every POST form."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from app.config import load_secret_key
from app.services import identity, signin
from app.services.context import Arca, Principal

COOKIE = "arca_ui"
MAX_AGE = 12 * 3600
PATH = "/ui"


@dataclass
class WebSession:
    nonce: str
    user_id: int | None = None
    fingerprint: str = ""
    principal: Principal | None = None
    fresh: bool = False  # the cookie must be (re)sent

    def csrf_token(self, arca: Arca) -> str:
        return hmac.new(_key(arca), b"csrf:" + self.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, arca: Arca, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(arca), token)


def _key(arca: Arca) -> bytes:
    return load_secret_key(arca.settings).encode()


def _serializer(arca: Arca) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(load_secret_key(arca.settings), salt="arca-ui-session")


def load(arca: Arca, request: Request) -> WebSession:
    """The request's session (sync: it reads the user through services). Invalid cookies start a new one."""
    raw = request.cookies.get(COOKIE)
    data = None
    if raw:
        try:
            data = _serializer(arca).loads(raw, max_age=MAX_AGE)
        except BadSignature:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str):
        return WebSession(nonce=secrets.token_urlsafe(18), fresh=True)
    ws = WebSession(nonce=data["n"])
    uid = data.get("u")
    if isinstance(uid, int):
        principal = identity.session_principal(arca, uid, str(data.get("f")))
        if principal is not None:
            ws.user_id, ws.fingerprint, ws.principal = uid, data["f"], principal
    if uid is not None and ws.principal is None:
        # Signed in once, but the user is gone or the password changed: a fresh anonymous session.
        return WebSession(nonce=secrets.token_urlsafe(18), fresh=True)
    return ws


def authenticate(arca: Arca, name: str, password: str, address: str | None) -> WebSession | None:
    """A new signed-in session for a correct name/password, else None (TooManyRequests while the
    name or the client address is locked out: services/signin.py)."""
    found = signin.sign_in(arca, name, password, address)
    if found is None:
        return None
    principal, fingerprint = found
    return WebSession(nonce=secrets.token_urlsafe(18), user_id=principal.user_id, fingerprint=fingerprint,
                      principal=principal, fresh=True)


def save(arca: Arca, request: Request, response: Response, ws: WebSession) -> None:
    data = {"n": ws.nonce}
    if ws.user_id is not None:
        data.update(u=ws.user_id, f=ws.fingerprint)
    response.set_cookie(COOKIE, _serializer(arca).dumps(data), max_age=MAX_AGE, path=PATH, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def clear(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")
