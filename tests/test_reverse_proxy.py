"""Behind a reverse proxy (issue 18 item 8): `arca serve` behind a real nginx terminating TLS on
loopback, with the documented proxy headers. Arca believes X-Forwarded-For/-Proto only from the
proxy it was told about (ARCA_FORWARDED_ALLOW_IPS), so generated URLs carry the public scheme and
host, the console cookie is Secure, policies (aws:SourceIp) and logs see the client; the same
headers from anyone else change nothing.

Loopback has many addresses: nginx connects to Arca from 127.0.0.2 (`proxy_bind`), the only trusted
one, and the browser-like client connects from 127.0.0.3, so each address in a log line says whose
it is."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import uuid

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.pypi_support import wait_for
from tests.support.nginx import LISTEN, Nginx
from tests.support.server import start_server
from tests.web_support import Console, set_password

PROXY = "127.0.0.2"
CLIENT = "127.0.0.3"


def self_signed(folder) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def proxy_config(arca_url: str, cert: str, key: str) -> str:
    """The location of docs/operations.md ("Behind a reverse proxy"), TLS on the inherited socket."""
    return f"""  server {{
    listen {LISTEN} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    location / {{
      proxy_pass {arca_url};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
      proxy_bind {PROXY};
    }}
  }}"""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    root = tmp_path_factory.mktemp("proxied")
    srv = start_server(root / "arca", env={"ARCA_FORWARDED_ALLOW_IPS": PROXY, "ARCA_LOG_FORMAT": "json"},
                       log_level="info")
    cert, key = self_signed(root)
    nginx = Nginx(root / "nginx", proxy_config(srv.url, cert, key))
    srv.public = f"https://127.0.0.1:{nginx.port}"
    srv.cert = cert
    try:
        yield srv
    finally:
        nginx.stop()
        srv.stop()


def client(srv, via_proxy: bool = True) -> httpx.Client:
    """A client connecting from CLIENT, through nginx (TLS) or straight to Arca."""
    verify = ssl.create_default_context(cafile=srv.cert) if via_proxy else True
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=verify)
    return httpx.Client(base_url=srv.public if via_proxy else srv.url, transport=transport, timeout=30,
                        follow_redirects=False)


def request_line(srv, request_id: str) -> dict:
    """The request's log line; it is written after the response went out, so wait for it to appear."""
    def find():
        for line in srv.log().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == "request" and record.get("request_id") == request_id:
                    return record
        return None
    record = wait_for(find, timeout=30)
    assert record is not None, f"no request line with id {request_id}"
    return record


def test_urls_and_logs_show_the_public_side_only_through_the_trusted_proxy(proxied):
    spoof = {"Accept": "application/json", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with client(proxied) as c:
        through = c.get("/", headers=spoof)
    assert through.status_code == 200, through.text
    assert through.json()["endpoints"]["console"] == proxied.public + "/ui/"
    # the client's own address: neither the proxy's nor what the client claimed in X-Forwarded-For
    line = request_line(proxied, through.headers["x-request-id"])
    assert line["remote"] == CLIENT

    # straight to Arca: the same headers from an untrusted peer change nothing
    with client(proxied, via_proxy=False) as c:
        direct = c.get("/", headers=spoof)
    assert direct.json()["endpoints"]["console"] == proxied.url + "/ui/"
    assert request_line(proxied, direct.headers["x-request-id"])["remote"] == CLIENT


def test_control_plane_urls_and_source_ip_policies_behind_the_proxy(proxied):
    admin = boto3.client("codeartifact", endpoint_url=proxied.public, region_name="us-east-1", verify=proxied.cert,
                         aws_access_key_id=proxied.access_key["AccessKeyId"],
                         aws_secret_access_key=proxied.access_key["SecretAccessKey"],
                         config=Config(retries={"max_attempts": 1}))
    domain = f"px{uuid.uuid4().hex[:8]}"
    admin.create_domain(domain=domain)
    admin.create_repository(domain=domain, repository="libs")
    endpoint = admin.get_repository_endpoint(domain=domain, repository="libs", format="pypi")
    assert endpoint["repositoryEndpoint"] == f"{proxied.public}/{domain}/pypi/libs/"

    name = f"u{uuid.uuid4().hex[:6]}"
    key = proxied.new_user(name)
    user = boto3.client("codeartifact", endpoint_url=proxied.public, region_name="us-east-1", verify=proxied.cert,
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        config=Config(retries={"max_attempts": 1}))

    def allow_from(address: str):
        admin.put_domain_permissions_policy(domain=domain, policyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{name}"},
                "Action": "codeartifact:DescribeDomain", "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": f"{address}/32"},
                              "Bool": {"aws:SecureTransport": "true"}}}]}))

    allow_from("127.0.0.1")  # boto3's own address: the client, seen through the proxy, over TLS
    assert user.describe_domain(domain=domain)["domain"]["name"] == domain
    allow_from(PROXY)  # the proxy's address is not the client's
    with pytest.raises(ClientError) as refused:
        user.describe_domain(domain=domain)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_console_cookie_is_secure_behind_the_tls_proxy(proxied):
    name = f"c{uuid.uuid4().hex[:6]}"
    proxied.new_user(name)
    set_password(proxied, name)
    for via_proxy, secure in ((True, True), (False, False)):
        console = Console(proxied)
        console.http = client(proxied, via_proxy)
        try:
            signed = console.login(name)
        finally:
            console.close()
        assert signed.status_code == 303, signed.text[:300]
        cookies = signed.headers.get_list("set-cookie")
        assert cookies and all(("; secure" in c.lower()) == secure for c in cookies), cookies
