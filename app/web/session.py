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
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from app.config import load_secret_key
from app.db.models import User
from app.services.context import Arca, Principal
from app.services.identity import _principal, check_password

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


def fingerprint(arca: Arca, password_hash: str | None) -> str:
    return hmac.new(_key(arca), (password_hash or "").encode(), hashlib.sha256).hexdigest()[:24]


def load(arca: Arca, request: Request) -> WebSession:
    """The request's session (sync: it reads the user row). Invalid cookies start a new one."""
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
        with arca.db.read() as s:
            user = s.get(User, uid)
            if user is not None and hmac.compare_digest(fingerprint(arca, user.password_hash), str(data.get("f"))):
                ws.user_id, ws.fingerprint, ws.principal = uid, data["f"], _principal(arca, user)
    if uid is not None and ws.principal is None:
        # Signed in once, but the user is gone or the password changed: a fresh anonymous session.
        return WebSession(nonce=secrets.token_urlsafe(18), fresh=True)
    return ws


def authenticate(arca: Arca, name: str, password: str) -> WebSession | None:
    """A new signed-in session for a correct name/password, else None (constant-ish time)."""
    with arca.db.read() as s:
        user = s.scalar(select(User).where(User.name == name)) if name else None
        stored = user.password_hash if user is not None else None
        if not check_password(password, stored or _DUMMY_HASH) or user is None or not stored:
            return None
        return WebSession(nonce=secrets.token_urlsafe(18), user_id=user.id,
                          fingerprint=fingerprint(arca, stored), principal=_principal(arca, user), fresh=True)


# A hash to check against when the user does not exist, so both cases cost one scrypt.
_DUMMY_HASH = "scrypt$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 88


def save(arca: Arca, request: Request, response: Response, ws: WebSession) -> None:
    data = {"n": ws.nonce}
    if ws.user_id is not None:
        data.update(u=ws.user_id, f=ws.fingerprint)
    response.set_cookie(COOKIE, _serializer(arca).dumps(data), max_age=MAX_AGE, path=PATH, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def clear(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")
