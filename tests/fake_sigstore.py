"""A local stand-in for Sigstore's public services, so that the real `npm publish --provenance`
runs here with no network: npm believes it runs in GitHub Actions (GITHUB_ACTIONS and
ACTIONS_ID_TOKEN_REQUEST_URL), fetches its OIDC token from this server, and reaches
`https://fulcio.sigstore.dev` and `https://rekor.sigstore.dev` through it as an HTTPS proxy
(HTTPS_PROXY): the CONNECT tunnel is answered here with a certificate from a throwaway CA that
npm is told to trust (NODE_EXTRA_CA_CERTS). The fake Fulcio issues a signing certificate for the
key npm sends; the fake Rekor answers with a log entry. Every request is recorded; nothing else is
reachable through the proxy (any other host gets 403)."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOSTS = ("fulcio.sigstore.dev", "rekor.sigstore.dev")
WORKFLOW = "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeSigstore:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, str]] = []  # (host or "", path)
        now = datetime.now(timezone.utc)
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        self.ca = (x509.CertificateBuilder().subject_name(_name("arca-test-ca")).issuer_name(_name("arca-test-ca"))
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .sign(self.ca_key, hashes.SHA384()))
        self.ca_file = root / "ca.pem"
        self.ca_file.write_text(_pem(self.ca))
        tls_key = ec.generate_private_key(ec.SECP256R1())
        tls = (x509.CertificateBuilder().subject_name(_name(HOSTS[0])).issuer_name(self.ca.subject)
               .public_key(tls_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]), critical=False)
               .sign(self.ca_key, hashes.SHA256()))
        (root / "tls.pem").write_text(_pem(tls) + tls_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(root / "tls.pem")
        fake = self

        class Inner(BaseHTTPRequestHandler):
            """Requests inside a CONNECT tunnel: the fake Fulcio and Rekor."""

            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                fake.requests.append((self.server_name, self.path))
                if self.server_name == "fulcio.sigstore.dev" and self.path == "/api/v2/signingCert":
                    return self._json(200, fake.signing_cert(body))
                if self.server_name == "rekor.sigstore.dev" and self.path == "/api/v1/log/entries":
                    return self._json(201, fake.log_entry(body))
                self._json(404, {"message": "not here"})

            def _json(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Outer(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # the CI's OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL)
                fake.requests.append(("", self.path))
                claims = {"iss": "https://token.actions.githubusercontent.com", "aud": "sigstore",
                          "sub": "repo:acme/widget:ref:refs/heads/main", "exp": int(time.time()) + 600,
                          "job_workflow_ref": WORKFLOW.split("https://github.com/", 1)[1]}
                token = ".".join((_b64url(b'{"alg":"none"}'), _b64url(json.dumps(claims).encode()), "sig"))
                data = json.dumps({"value": token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_CONNECT(self):
                host, _, port = self.path.partition(":")
                fake.requests.append(("CONNECT", self.path))
                if host not in HOSTS or port != "443":
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200, "Connection Established")
                self.end_headers()
                self.wfile.flush()
                tunnel = fake.tls.wrap_socket(self.connection, server_side=True)
                handler = type("Tunnel", (Inner,), {"server_name": host})
                handler(tunnel, self.client_address, self.server)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Outer)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def signing_cert(self, request: dict) -> dict:
        pem = request["publicKeyRequest"]["publicKey"]["content"]
        key = serialization.load_pem_public_key(pem.encode() if "BEGIN" in pem else
                                                b"-----BEGIN PUBLIC KEY-----\n" + pem.encode() +
                                                b"\n-----END PUBLIC KEY-----\n")
        now = datetime.now(timezone.utc)
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.ca.subject)
                .public_key(key).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(minutes=10))
                .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(WORKFLOW)]), critical=True)
                .sign(self.ca_key, hashes.SHA384()))
        return {"signedCertificateEmbeddedSct": {"chain": {"certificates": [_pem(leaf), _pem(self.ca)]}}}

    def log_entry(self, proposed: dict) -> dict:
        body = base64.b64encode(json.dumps({"apiVersion": proposed.get("apiVersion", "0.0.1"),
                                            "kind": proposed.get("kind", "dsse"), "spec": {}}).encode()).decode()
        return {"24296fb24b8ad77a" + "0" * 48: {
            "body": body, "integratedTime": int(time.time()), "logID": "c0d23d6ad406973f" * 4, "logIndex": 42,
            "verification": {"signedEntryTimestamp": base64.b64encode(b"local set").decode()}}}

    def env(self) -> dict:
        """What npm needs to sign in 'GitHub Actions' against this server."""
        return {"GITHUB_ACTIONS": "true", "CI": "true",
                "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/token?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "local-request-token",
                "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/widget",
                "GITHUB_WORKFLOW_REF": "acme/widget/.github/workflows/release.yml@refs/heads/main",
                "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "0" * 40, "GITHUB_RUN_ID": "1",
                "GITHUB_RUN_ATTEMPT": "1", "GITHUB_EVENT_NAME": "push", "RUNNER_ENVIRONMENT": "github-hosted",
                "HTTPS_PROXY": self.url, "https_proxy": self.url, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "NODE_EXTRA_CA_CERTS": str(self.ca_file)}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
