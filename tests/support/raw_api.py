"""Control-plane requests built by hand and signed with SigV4 (botocore.auth.SigV4Auth): boto3 neither
serialises nor validates them, so a test can send any query string, header or JSON body."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import botocore.session
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MODEL = botocore.session.get_session().get_service_model("codeartifact")


class RawControlPlane:
    def __init__(self, base_url: str, key: dict, region: str = "us-east-1"):
        self.base_url = base_url
        self.region = region
        self._credentials = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        self.http = httpx.Client(timeout=60)

    def close(self) -> None:
        self.http.close()

    def send(self, operation: str, query=(), body: bytes | dict | None = None,
             headers: dict | None = None) -> httpx.Response:
        """`operation` at its method and URI; `query` is a list of (name, text) pairs sent as given
        (a name may repeat), `body` JSON (a dict) or raw bytes."""
        http = MODEL.operation_model(operation).http
        return self.request(http["method"], http["requestUri"], query, body, headers)

    def request(self, method: str, path: str, query=(), body: bytes | dict | None = None,
                headers: dict | None = None) -> httpx.Response:
        data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        target, signed = self.sign(method, path, query, data, headers)
        return self.http.request(method, self.base_url + target, content=data, headers=signed)

    def sign(self, method: str, path: str, query=(), data: bytes = b"",
             headers: dict | None = None) -> tuple[str, dict]:
        """(path with its query string, the headers with their SigV4 signature) for a request."""
        text = urlencode(list(query), quote_via=quote, safe="-_.~")
        target = path + (f"?{text}" if text else "")
        request = AWSRequest(method=method, url=self.base_url + target, data=data, headers=dict(headers or {}))
        SigV4Auth(self._credentials, "codeartifact", self.region).add_auth(request)
        return target, dict(request.headers.items())
