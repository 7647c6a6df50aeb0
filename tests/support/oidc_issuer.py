"""A local OIDC issuer for tests: its own key pairs, the discovery document and JWKS served over
HTTP on loopback, and tokens signed the way GitHub Actions signs them (RS256, a kid, GitHub's claims).
It counts the key set fetches, so tests can see Arca's cache at work."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


def github_claims(issuer: str, *, repository: str = "acme/widgets", ref: str = "refs/heads/main",
                  aud: str = "arca", lifetime: int = 300, **extra) -> dict:
    now = int(time.time())
    owner = repository.split("/")[0]
    claims = {"jti": f"jti-{now}", "sub": f"repo:{repository}:ref:{ref}", "aud": aud, "ref": ref,
              "sha": "0" * 40, "repository": repository, "repository_owner": owner, "repository_visibility": "private",
              "run_id": "1", "run_number": "1", "run_attempt": "1", "actor": "octocat", "workflow": "release",
              "event_name": "push", "ref_type": "branch", "job_workflow_ref":
              f"{repository}/.github/workflows/release.yml@{ref}", "iss": issuer,
              "nbf": now - 5, "iat": now - 5, "exp": now + lifetime}
    claims.update(extra)
    return claims


class Issuer:
    def __init__(self):
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})]
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/.well-known/jwks",
                            "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == "/.well-known/jwks":
                    issuer.jwks_fetches += 1
                    body = KeySet(issuer.keys).as_dict(private=False)
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.host = self.url.split("://", 1)[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Issuer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def sign(self, claims: dict, key: RSAKey | None = None, alg: str = "RS256") -> str:
        key = key or self.keys[0]
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key)

    def add_key(self, kid: str) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        self.keys.append(key)
        return key

    @staticmethod
    def unsigned(claims: dict, kid: str = "key-1") -> str:
        """`alg: none`: a token anyone can write."""
        def part(d: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
        return f"{part({'alg': 'none', 'kid': kid, 'typ': 'JWT'})}.{part(claims)}."
