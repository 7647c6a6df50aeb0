"""Issue 15 item 3: access key secrets at rest are sealed (AES-GCM, key derived from the server key);
the revision that introduces this seals the plaintext an older release stored; `arca admin
rotate-secret-key` moves every secret to a new key while servers keep authenticating."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.auth.secretbox import SecretBox, SecretUnreadable
from tests.support import dbdump
from tests.support.server import ArcaServer, clean_env, start_server

ROOT = Path(__file__).resolve().parents[1]
ALEMBIC = str(Path(sys.executable).parent / "alembic")
BEFORE_IDENTITY = "0007"  # the last revision before this (0008 seals access key secrets)


def sts(server, key):
    return boto3.client("sts", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                        aws_secret_access_key=key["SecretAccessKey"], config=Config(retries={"max_attempts": 1}))


def sealed_values(url: str) -> dict[str, str]:
    return dict(dbdump.rows(url, "SELECT access_key_id, secret_sealed FROM access_keys"))


def test_secretbox_binds_values_to_their_row_and_key():
    box = SecretBox(["server-key-1"])
    sealed = box.seal("s3cr3t", "access-key:AKIA1")
    assert "s3cr3t" not in sealed and box.open(sealed, "access-key:AKIA1") == "s3cr3t"
    with pytest.raises(SecretUnreadable):
        box.open(sealed, "access-key:AKIA2")  # copied onto another row: does not open
    with pytest.raises(SecretUnreadable):
        SecretBox(["another-key"]).open(sealed, "access-key:AKIA1")
    assert box.seal("s3cr3t", "access-key:AKIA1") != sealed  # a fresh nonce each time
    tampered = sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB")
    with pytest.raises(SecretUnreadable):
        box.open(tampered, "access-key:AKIA1")
    rotated = SecretBox(["server-key-2", "server-key-1"])
    assert rotated.open(sealed, "access-key:AKIA1") == "s3cr3t" and not rotated.is_current(sealed)
    assert rotated.is_current(rotated.seal("s3cr3t", "access-key:AKIA1"))


def _sealed_the_old_way(server_key: str, plain: str, name: str) -> str:
    """External connection credentials as revision 0006's release sealed them (their own module)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"arca-sealing-v1",
               info=b"external-connection-credentials").derive(server_key.encode())
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(b"\x01" + nonce + AESGCM(key).encrypt(nonce, plain.encode(), name.encode())).decode()


def _opened_the_old_way(server_key: str, token: str, name: str) -> str:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"arca-sealing-v1",
               info=b"external-connection-credentials").derive(server_key.encode())
    raw = base64.urlsafe_b64decode(token.encode())
    return AESGCM(key).decrypt(raw[1:13], raw[13:], name.encode()).decode()


def test_the_revisions_seal_the_plaintext_an_older_release_stored(tmp_path):
    db, data = tmp_path / "arca.db", tmp_path / "storage"
    server_key = "server-key-of-the-older-release-" + "s" * 20
    env = clean_env(ARCA_DATABASE_URL=f"sqlite:///{db}", ARCA_DATA_DIR=str(data), ARCA_SECRET_KEY=server_key)

    def alembic(*args):
        proc = subprocess.run([ALEMBIC, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    alembic("upgrade", BEFORE_IDENTITY)
    plain = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    remote_password = "corp-remote-password-" + "p" * 16
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO users (id, name, is_admin, created_at) VALUES (1, 'old', 1, '2026-01-01 00:00:00')")
        conn.execute("INSERT INTO access_keys (access_key_id, secret, user_id, status, created_at) "
                     "VALUES ('AKIAOLDRELEASE00001', ?, 1, 'Active', '2026-01-01 00:00:00')", (plain,))
        conn.execute("INSERT INTO domains (id, name, created_at) VALUES (1, 'old', '2026-01-01 00:00:00')")
        conn.execute("INSERT INTO webhooks (id, domain_id, url, secret, filters, created_at) "
                     "VALUES (1, 1, 'http://127.0.0.1:9/', 'old-webhook-key', '{}', '2026-01-01 00:00:00')")
        conn.execute("INSERT INTO external_connections (id, name, format, url, allowed_prefixes, auth, secret, "
                     "created_at, updated_at) VALUES (1, 'corp', 'npm', 'http://127.0.0.1:9/', '{}', "
                     "'{\"type\": \"BASIC\", \"username\": \"ci\"}', ?, '2026-01-01 00:00:00', "
                     "'2026-01-01 00:00:00')", (_sealed_the_old_way(server_key, remote_password, "corp"),))
    alembic("upgrade", "head")
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
        (connection_secret,), = conn.execute("SELECT secret FROM external_connections").fetchall()
    assert plain not in dump and sealed_values(f"sqlite:///{db}")["AKIAOLDRELEASE00001"].startswith("v1.")
    assert "old-webhook-key" not in dump and remote_password not in dump
    # the connection's credentials are sealed the one way every other secret is (so rotation reseals them)
    assert SecretBox([server_key]).open(connection_secret, "external-connection:corp") == remote_password
    # the sealed key signs requests as before
    srv = ArcaServer(root=tmp_path, env=env, access_key={"AccessKeyId": "AKIAOLDRELEASE00001",
                                                         "SecretAccessKey": plain})
    srv.start()
    try:
        assert sts(srv, srv.access_key).get_caller_identity()["Arn"].endswith(":user/old")
    finally:
        srv.stop()
    # and the way back restores what the older release reads
    alembic("downgrade", BEFORE_IDENTITY)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT secret FROM access_keys").fetchall() == [(plain,)]
        assert conn.execute("SELECT secret FROM webhooks").fetchall() == [("old-webhook-key",)]
        (connection_secret,), = conn.execute("SELECT secret FROM external_connections").fetchall()
    assert _opened_the_old_way(server_key, connection_secret, "corp") == remote_password


def test_rotate_secret_key_reseals_every_secret_while_servers_keep_working(tmp_path):
    srv = start_server(tmp_path / "rot")
    try:
        db = srv.env["ARCA_DATABASE_URL"]
        key_file = Path(srv.env["ARCA_DATA_DIR"]) / "secret.key"
        alice = srv.new_user("alice")
        old_key, before = key_file.read_text(), sealed_values(db)
        out = json.loads(srv.admin("rotate-secret-key").stdout)
        assert out["resealed"] == 2 and out["unreadable"] == [] and out["newKeyWritten"] is True
        assert key_file.read_text() != old_key
        assert (key_file.parent / "secret.key.previous").read_text().split() == [old_key]
        after = sealed_values(db)
        assert set(after) == set(before) and all(after[k] != before[k] for k in after)
        assert len({v.split(".")[1] for v in after.values()}) == 1  # all under the one new key
        # the running server reads the new key when it meets it; nothing was refused meanwhile
        for key in (srv.access_key, alice):
            assert sts(srv, key).get_caller_identity()["Account"] == "000000000000"
        # resealing again (after every server restarted: what they sealed meanwhile) finds nothing left
        again = json.loads(srv.admin("rotate-secret-key", "--reseal-only").stdout)
        assert again["alreadyCurrent"] == 2 and again["resealed"] == 0
        srv.stop()
        srv.start()
        assert sts(srv, alice).get_caller_identity()["Arn"].endswith(":user/alice")
    finally:
        srv.stop()


def test_a_server_key_changed_without_the_previous_one_opens_no_secret(tmp_path):
    srv = start_server(tmp_path / "env", env={"ARCA_SECRET_KEY": "first-" + "k" * 40})
    try:
        srv.stop()
        srv.env["ARCA_SECRET_KEY"] = "second-" + "k" * 40
        srv.start()
        with pytest.raises(ClientError) as info:
            sts(srv, srv.access_key).get_caller_identity()
        assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"
        assert "does not open with this server's keys" in srv.log()
        # with the old key as previous, and after rotate-secret-key, without it again
        srv.stop()
        srv.env["ARCA_SECRET_KEY_PREVIOUS"] = "first-" + "k" * 40
        srv.start()
        assert sts(srv, srv.access_key).get_caller_identity()["Account"] == "000000000000"
        out = json.loads(srv.admin("rotate-secret-key").stdout)
        assert out["resealed"] == 1 and out["newKeyWritten"] is False
        srv.stop()
        del srv.env["ARCA_SECRET_KEY_PREVIOUS"]
        srv.start()
        assert sts(srv, srv.access_key).get_caller_identity()["Account"] == "000000000000"
        assert httpx.get(srv.url + "/healthz").status_code == 200
    finally:
        srv.stop()
