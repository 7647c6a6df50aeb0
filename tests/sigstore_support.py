"""Locally made Sigstore material for provenance tests (no network): a short-lived signing
certificate from a throwaway CA, like Fulcio's, an in-toto statement signed as a DSSE envelope, and
the two wrappings registries receive: npm's Sigstore bundle and PEP 740's attestation object."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

INTOTO = "application/vnd.in-toto+json"
SLSA_V1 = "https://slsa.dev/provenance/v1"
PYPI_PUBLISH_V1 = "https://docs.pypi.org/attestations/publish/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Signer:
    key: ec.EllipticCurvePrivateKey
    cert_der: bytes
    ca_cert: x509.Certificate

    @classmethod
    def new(cls, ca_key=None, ca_cert=None) -> "Signer":
        now = datetime.now(timezone.utc)
        if ca_key is None:
            ca_key = ec.generate_private_key(ec.SECP384R1())
            ca_cert = (x509.CertificateBuilder().subject_name(_name("test-fulcio")).issuer_name(_name("test-fulcio"))
                       .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
                       .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                       .sign(ca_key, hashes.SHA384()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(minutes=10))
                .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(
                    "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main")]), critical=True)
                .sign(ca_key, hashes.SHA384()))
        return cls(key, cert.public_bytes(serialization.Encoding.DER), ca_cert)

    def sign(self, payload: bytes) -> bytes:
        return self.key.sign(pae(INTOTO, payload), ec.ECDSA(hashes.SHA256()))


def statement(name: str, digest: dict, predicate_type: str, predicate: dict | None = None) -> bytes:
    return json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": name, "digest": digest}],
                       "predicateType": predicate_type, "predicate": predicate or {}}).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tlog_entry() -> dict:
    return {"logIndex": "123456", "logId": {"keyId": b64(b"\x01" * 32)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"}, "integratedTime": "1760000000",
            "inclusionPromise": {"signedEntryTimestamp": b64(b"set")}, "canonicalizedBody": b64(b"{}")}


def npm_bundle(signer: Signer, purl: str, sha512_hex: str, *, payload: bytes | None = None) -> dict:
    """A Sigstore bundle (v0.3) as `npm publish --provenance` attaches it."""
    payload = payload or statement(purl, {"sha512": sha512_hex}, SLSA_V1,
                                   {"buildDefinition": {"buildType": "https://slsa-framework.github.io/"
                                                                     "github-actions-buildtypes/workflow/v1"}})
    return {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"certificate": {"rawBytes": b64(signer.cert_der)}, "tlogEntries": [tlog_entry()]},
            "dsseEnvelope": {"payload": b64(payload), "payloadType": INTOTO,
                             "signatures": [{"sig": b64(signer.sign(payload)), "keyid": ""}]}}


def pep740_attestation(signer: Signer, filename: str, sha256_hex: str, *, payload: bytes | None = None) -> dict:
    """A PEP 740 attestation object, as `twine upload --attestations` reads it from a
    `{dist}.publish.attestation` file."""
    payload = payload or statement(filename, {"sha256": sha256_hex}, PYPI_PUBLISH_V1)
    return {"version": 1,
            "verification_material": {"certificate": b64(signer.cert_der), "transparency_entries": [tlog_entry()]},
            "envelope": {"statement": b64(payload), "signature": b64(signer.sign(payload))}}
