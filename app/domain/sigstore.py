"""Sigstore bundles and PEP 740 attestations: what a registry can check of them on its own.

Both carry an in-toto statement signed as a DSSE envelope by the key of an X.509 certificate they
include (npm: a Sigstore bundle, `NAME-VERSION.sigstore`; PyPI: PEP 740's attestation object).
Checked here, with no network: the shape; the statement's one subject is the uploaded file (name
and digest); the signature over DSSE's pre-authentication encoding verifies with the included
certificate's public key. Not checked: that the certificate chains to Sigstore's Fulcio root and
that the transparency-log entry is real. Those need Sigstore's trust root, which installers
(`npm audit signatures`, `pypi-attestations verify`) check against their own copy."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from app.domain.errors import ValidationError

INTOTO = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
BUNDLE_MEDIA = "application/vnd.dev.sigstore.bundle"
MAX_DOCUMENT = 256 * 1024  # a bundle or an attestation is a few kilobytes


@dataclass(frozen=True)
class Checked:
    predicate_type: str
    document: dict  # the bundle or attestation as received (parsed)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{what} is not base64") from None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def verify_signature(cert_der: bytes, signature: bytes, message: bytes, what: str) -> None:
    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
    except ValueError:
        raise ValidationError(f"{what}: the certificate is not DER X.509") from None
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            algo = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
            key.verify(signature, message, ec.ECDSA(algo))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise ValidationError(f"{what}: the certificate's key type is not supported")
    except InvalidSignature:
        raise ValidationError(f"{what}: the signature does not verify with the included certificate") from None


def _statement(payload: bytes, what: str) -> dict:
    try:
        st = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"{what}: the signed statement is not JSON") from None
    if not isinstance(st, dict) or st.get("_type") not in STATEMENT_TYPES:
        raise ValidationError(f"{what}: the signed payload is not an in-toto statement")
    if not isinstance(st.get("predicateType"), str) or not st["predicateType"]:
        raise ValidationError(f"{what}: the statement has no predicateType")
    subjects = st.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise ValidationError(f"{what}: the statement must have exactly one subject")
    return st


def _subject(st: dict, name: str, alg: str, digest: str, what: str) -> None:
    sub = st["subject"][0]
    if sub.get("name") != name:
        raise ValidationError(f"{what}: the statement's subject is {str(sub.get('name'))[:200]!r}, not {name!r}")
    given = sub.get("digest") if isinstance(sub.get("digest"), dict) else {}
    if str(given.get(alg, "")).lower() != digest:
        raise ValidationError(f"{what}: the statement's {alg} digest is not the uploaded file's")


def _load(raw: object, what: str) -> dict:
    if isinstance(raw, (str, bytes)):
        if len(raw) > MAX_DOCUMENT:
            raise ValidationError(f"{what} is larger than {MAX_DOCUMENT} bytes")
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ValidationError(f"{what} is not JSON") from None
    if not isinstance(raw, dict):
        raise ValidationError(f"{what} must be a JSON object")
    return raw


def check_bundle(raw: object, purl: str, sha512: str) -> Checked:
    """An npm provenance bundle (Sigstore bundle JSON) for the tarball `purl` with this SHA-512."""
    what = "The provenance bundle"
    b = _load(raw, what)
    if not str(b.get("mediaType", "")).startswith(BUNDLE_MEDIA):
        raise ValidationError(f"{what} is not a Sigstore bundle (mediaType {str(b.get('mediaType'))[:100]!r})")
    env = b.get("dsseEnvelope")
    if not isinstance(env, dict) or env.get("payloadType") != INTOTO:
        raise ValidationError(f"{what} has no DSSE envelope with an in-toto payload")
    payload = _b64(env.get("payload"), f"{what}'s payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise ValidationError(f"{what} must carry exactly one signature")
    material = b.get("verificationMaterial") if isinstance(b.get("verificationMaterial"), dict) else {}
    cert = material.get("certificate") if isinstance(material.get("certificate"), dict) else None
    chain = material.get("x509CertificateChain") if isinstance(material.get("x509CertificateChain"), dict) else None
    if cert is None and chain and isinstance(chain.get("certificates"), list) and chain["certificates"]:
        cert = chain["certificates"][0] if isinstance(chain["certificates"][0], dict) else None
    if cert is None:
        raise ValidationError(f"{what} carries no signing certificate")
    st = _statement(payload, what)
    _subject(st, purl, "sha512", sha512, what)
    verify_signature(_b64(cert.get("rawBytes"), f"{what}'s certificate"), _b64(sigs[0].get("sig"), f"{what}'s "
                     "signature"), pae(INTOTO, payload), what)
    return Checked(st["predicateType"], b)


def check_attestation(raw: object, filename: str, sha256: str) -> Checked:
    """A PEP 740 attestation object for the distribution `filename` with this SHA-256."""
    what = f"The attestation for {filename}"
    if not isinstance(raw, dict):
        raise ValidationError(f"{what} must be a JSON object")
    a = raw
    if a.get("version") != 1:
        raise ValidationError(f"{what} must be version 1 (PEP 740)")
    material = a.get("verification_material") if isinstance(a.get("verification_material"), dict) else {}
    env = a.get("envelope") if isinstance(a.get("envelope"), dict) else {}
    payload = _b64(env.get("statement"), f"{what}'s statement")
    st = _statement(payload, what)
    _subject(st, filename, "sha256", sha256, what)
    verify_signature(_b64(material.get("certificate"), f"{what}'s certificate"),
                     _b64(env.get("signature"), f"{what}'s signature"), pae(INTOTO, payload), what)
    if not isinstance(material.get("transparency_entries"), list):
        raise ValidationError(f"{what} has no transparency_entries")
    return Checked(st["predicateType"], a)
