"""Provenance and attestations: npm's Sigstore provenance bundles (`NAME-VERSION.sigstore`) and
PEP 740 attestations (`twine upload --attestations`), checked against the uploaded file, stored,
and served as the public registries serve them. The Sigstore material is made locally
(tests/sigstore_support.py), or, for the real `npm publish --provenance`, by local stand-ins for
the CI's OIDC endpoint, Fulcio and Rekor (tests/fake_sigstore.py): no network."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest

from tests.npm_support import escape, make_tarball, publish_body, setup_registry
from tests.sigstore_support import SLSA_V1, Signer, npm_bundle, statement


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.new()


def provenance_body(name: str, version: str, bundle: dict | str, tgz: bytes | None = None) -> dict:
    """The publish body libnpmpublish builds for `npm publish --provenance`: the tarball, and the bundle
    as a second attachment whose data is the bundle's JSON text."""
    body = publish_body(name, version, tgz)
    data = bundle if isinstance(bundle, str) else json.dumps(bundle)
    body["_attachments"][f"{name}-{version}.sigstore"] = {
        "content_type": "application/vnd.dev.sigstore.bundle.v0.3+json", "data": data, "length": len(data)}
    return body


def purl(name: str, version: str) -> str:
    return f"pkg:npm/{name.replace('@', '%40')}@{version}"


def sha512_hex(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def test_a_provenance_bundle_is_checked_stored_and_served(server, unique, tmp_path, signer):
    reg = setup_registry(server, tmp_path, unique)
    name, version = "@acme/proven", "1.0.0"
    tgz = make_tarball(name, version)
    bundle = npm_bundle(signer, purl(name, version), sha512_hex(tgz))
    with reg.http() as c:
        r = c.put(escape(name), json=provenance_body(name, version, bundle, tgz))
        assert r.status_code == 201, r.text
        doc = reg.packument(name).json()
        att = doc["versions"][version]["dist"]["attestations"]
        assert att == {"url": f"{reg.url}-/npm/v1/attestations/@acme%2fproven@1.0.0",
                       "provenance": {"predicateType": SLSA_V1}}
        corgi = reg.packument(name, accept="application/vnd.npm.install-v1+json").json()
        assert corgi["versions"][version]["dist"]["attestations"] == att
        got = c.get(att["url"])
        assert got.status_code == 200
        assert got.json() == {"attestations": [{"predicateType": SLSA_V1, "bundle": bundle}]}
        assert c.get("-/npm/v1/attestations/@acme/proven@1.0.0").json() == got.json()
        assert c.get("-/npm/v1/attestations/@acme/proven@2.0.0").status_code == 404
    # The real npm reads it as it reads the public registry's.
    assert reg.npm_json("view", f"{name}@{version}", "dist.attestations") == att
    assets = server.boto().list_package_version_assets(domain=reg.domain, repository=reg.repo, format="npm",
                                                       namespace="acme", package="proven", packageVersion=version)
    assert [a["name"] for a in assets["assets"]] == ["proven-1.0.0.tgz"]  # the bundle is no asset


@pytest.mark.parametrize("case", ["other-digest", "other-package", "bad-signature", "other-key", "not-json",
                                  "not-a-bundle", "no-certificate", "wrong-name", "two-subjects"])
def test_a_bad_provenance_bundle_refuses_the_publish_and_nothing_is_kept(server, unique, tmp_path, signer, case):
    reg = setup_registry(server, tmp_path, unique)
    name, version = "widget", "1.0.0"
    tgz = make_tarball(name, version)
    good = npm_bundle(signer, purl(name, version), sha512_hex(tgz))
    bundle: dict | str = good
    reason = {"other-digest": "digest is not the uploaded file's", "other-package": "subject is",
              "bad-signature": "does not verify", "other-key": "does not verify", "not-json": "not JSON",
              "not-a-bundle": "not a Sigstore bundle", "no-certificate": "no signing certificate",
              "wrong-name": "must be named widget-1.0.0.sigstore", "two-subjects": "exactly one subject"}[case]
    if case == "other-digest":
        bundle = npm_bundle(signer, purl(name, version), sha512_hex(b"another tarball"))
    elif case == "other-package":
        bundle = npm_bundle(signer, purl("gadget", version), sha512_hex(tgz))
    elif case == "bad-signature":
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    elif case == "other-key":  # signed by one key, carrying another's certificate
        bundle["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(Signer.new().cert_der).decode()
    elif case == "not-json":
        bundle = "{not json"
    elif case == "not-a-bundle":
        bundle = {**good, "mediaType": "application/json"}
    elif case == "no-certificate":
        bundle = {**good, "verificationMaterial": {"publicKey": {"hint": "x"}}}
    elif case == "two-subjects":
        payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "predicateType": SLSA_V1, "subject": [
            {"name": purl(name, version), "digest": {"sha512": sha512_hex(tgz)}},
            {"name": "pkg:npm/other@1.0.0", "digest": {"sha512": "00"}}]}).encode()
        bundle = npm_bundle(signer, purl(name, version), sha512_hex(tgz), payload=payload)
    body = provenance_body(name, version, bundle, tgz)
    if case == "wrong-name":
        body["_attachments"]["other-1.0.0.sigstore"] = body["_attachments"].pop(f"{name}-{version}.sigstore")
    with reg.http() as c:
        r = c.put(name, json=body)
        assert r.status_code == 400 and reason in r.json()["error"], (case, r.text)
        assert c.get(name).status_code == 404  # no version, no package
    assert server.boto().list_packages(domain=reg.domain, repository=reg.repo)["packages"] == []


def test_a_forged_dist_attestations_field_is_not_served(server, unique, tmp_path):
    """Only the registry says where attestations are: a manifest that claims some itself loses the claim."""
    reg = setup_registry(server, tmp_path, unique)
    body = publish_body("claims", "1.0.0")
    body["versions"]["1.0.0"]["dist"]["attestations"] = {"url": "https://evil.invalid/x",
                                                        "provenance": {"predicateType": SLSA_V1}}
    with reg.http() as c:
        assert c.put("claims", json=body).status_code == 201
    assert "attestations" not in reg.packument("claims").json()["versions"]["1.0.0"]["dist"]


# ---- PEP 740: twine upload --attestations ------------------------------------------------------------

def _pypi_repo(server, unique):
    from tests.pypi_support import index_url

    d = f"pa{unique}"
    server.create_repo(d, "py")
    token = server.token(d)
    return d, token, server.endpoint(d, "pypi", "py"), index_url(server, d, "py", token)


def _with_attestation(tmp_path, name, version, signer, *, tamper=None):
    from tests.pypi_support import make_wheel
    from tests.sigstore_support import pep740_attestation

    dist = tmp_path / "dist"
    wheel = make_wheel(dist, name, version)
    att = pep740_attestation(signer, wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest())
    if tamper:
        att = tamper(att, wheel)
    (dist / f"{wheel.name}.publish.attestation").write_text(json.dumps(att))
    return wheel, att


def test_twine_attestations_are_stored_and_served_through_the_simple_api_and_integrity_api(
        server, unique, tmp_path, signer):
    from tests.pypi_support import twine_upload

    d, token, upload_url, _index = _pypi_repo(server, unique)
    wheel, att = _with_attestation(tmp_path, "attested", "1.0", signer)
    proc = twine_upload(upload_url, token, [wheel, wheel.parent / f"{wheel.name}.publish.attestation"],
                        extra=["--attestations"])
    assert proc.returncode == 0
    simple = f"{upload_url}simple/attested/"
    with httpx.Client(auth=("aws", token)) as c:
        page = c.get(simple, headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        assert page["meta"]["api-version"] == "1.3"
        (f,) = page["files"]
        assert f["provenance"] == f"../../integrity/attested/1.0/{wheel.name}/provenance"
        html_page = c.get(simple).text
        assert f'data-provenance="../../integrity/attested/1.0/{wheel.name}/provenance"' in html_page
        r = c.get(httpx.URL(simple).join(f["provenance"]))
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.pypi.integrity.v1+json"
        prov = r.json()
        assert prov["version"] == 1
        (bundle,) = prov["attestation_bundles"]
        assert bundle["attestations"] == [att] and bundle["publisher"]["kind"] == "Arca"
        assert c.get(f"{upload_url}integrity/attested/1.0/nope-1.0-py3-none-any.whl/provenance").status_code == 404


@pytest.mark.parametrize("case", ["other-file", "other-digest", "bad-signature", "not-pep740"])
def test_bad_attestations_refuse_the_upload_and_nothing_is_kept(server, unique, tmp_path, signer, case):
    from tests.pypi_support import twine_upload
    from tests.sigstore_support import pep740_attestation

    def tamper(att, wheel):
        if case == "other-file":
            return pep740_attestation(signer, "other-1.0-py3-none-any.whl",
                                      hashlib.sha256(wheel.read_bytes()).hexdigest())
        if case == "other-digest":
            return pep740_attestation(signer, wheel.name, hashlib.sha256(b"x").hexdigest())
        if case == "bad-signature":
            return {**att, "envelope": {**att["envelope"], "signature": base64.b64encode(b"junk").decode()}}
        return {"version": 2}

    reason = {"other-file": "subject is", "other-digest": "digest is not the uploaded file's",
              "bad-signature": "signature", "not-pep740": "version 1"}[case]
    d, token, upload_url, _index = _pypi_repo(server, unique)
    wheel, _att = _with_attestation(tmp_path, "refused", "1.0", signer, tamper=tamper)
    proc = twine_upload(upload_url, token, [wheel, wheel.parent / f"{wheel.name}.publish.attestation"],
                        extra=["--attestations", "--verbose"], check=False)
    assert proc.returncode != 0 and "400" in proc.stdout + proc.stderr and reason in proc.stdout + proc.stderr
    assert server.boto().list_packages(domain=d, repository="py")["packages"] == []


def test_a_malformed_attestations_field_is_refused(server, unique, tmp_path):
    from tests.pypi_support import make_wheel

    d, token, upload_url, _index = _pypi_repo(server, unique)
    wheel = make_wheel(tmp_path, "raw-att", "1.0")
    data = wheel.read_bytes()
    for value, reason in (("{not json", "not JSON"), ("{}", "non-empty JSON list"), ("[]", "non-empty JSON list"),
                          (json.dumps([{}] * 9), "At most 8"), ('["x"]', "must be a JSON object")):
        form = {":action": "file_upload", "protocol_version": "1", "name": "raw-att", "version": "1.0",
                "filetype": "bdist_wheel", "sha256_digest": hashlib.sha256(data).hexdigest(), "attestations": value}
        r = httpx.post(upload_url, data=form, files={"content": (wheel.name, data)}, auth=("aws", token))
        assert r.status_code == 400 and reason in r.text, (value, r.text)
    assert server.boto().list_packages(domain=d, repository="py")["packages"] == []


# ---- the real npm publish --provenance (a local Sigstore stand-in) ------------------------------------

def test_the_real_npm_publish_provenance_is_accepted_and_served(server, unique, tmp_path):
    import subprocess

    from tests.fake_sigstore import FakeSigstore
    from tests.npm_support import write_package
    from tests.support.server import require_tool

    fake = FakeSigstore(tmp_path / "sigstore")
    try:
        reg = setup_registry(server, tmp_path / "reg", unique)
        pkg = write_package(tmp_path / "src", "@acme/signed", "1.0.0")
        env = reg.env(**fake.env())
        proc = subprocess.run([require_tool("npm"), "publish", "--provenance", "--access", "public", "--loglevel=notice"], cwd=pkg,
                              env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr + server.log()[-2000:]
        assert "Signed provenance statement" in proc.stderr + proc.stdout
        assert ("fulcio.sigstore.dev", "/api/v2/signingCert") in fake.requests
        assert ("rekor.sigstore.dev", "/api/v1/log/entries") in fake.requests
    finally:
        fake.close()
    att = reg.npm_json("view", "@acme/signed@1.0.0", "dist.attestations")
    assert att["provenance"] == {"predicateType": SLSA_V1}
    with reg.http() as c:
        (entry,) = c.get(att["url"]).json()["attestations"]
    bundle = entry["bundle"]
    statement_doc = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    tgz = httpx.get(reg.packument("@acme/signed").json()["versions"]["1.0.0"]["dist"]["tarball"],
                    headers={"Authorization": f"Bearer {reg.token}"}).content
    assert statement_doc["subject"] == [{"name": "pkg:npm/%40acme/signed@1.0.0",
                                         "digest": {"sha512": hashlib.sha512(tgz).hexdigest()}}]
