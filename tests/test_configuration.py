"""Configuration as an operator meets it: a setting Arca cannot use stops `arca serve` (and `arca
admin`) with one line naming it, never a traceback; `arca config show` prints what is in effect,
where each value came from, and no secret; an ARCA_CONFIG file holds the same names as the
environment (which wins); NAME_FILE reads a value from a file (the container convention)."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from app.config import SettingError, settings_from_env
from tests.support.server import ARCA, clean_env, refused_port, start_server


def run(*args: str, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([ARCA, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess, *expected: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


BAD = [
    ({"ARCA_PORT": "80a"}, ["arca serve: ARCA_PORT must be a whole number, not '80a'"]),
    ({"ARCA_WORKERS": "0"}, ["ARCA_WORKERS must be at least 1"]),
    ({"ARCA_UPSTREAM_TIMEOUT": "soon"}, ["ARCA_UPSTREAM_TIMEOUT must be a number"]),
    ({"ARCA_BLOB_STORE": "gs://bucket/x"}, ["ARCA_BLOB_STORE must be 'file' or 's3://bucket/prefix', not 'gs://bucket/x'"]),
    ({"ARCA_DATABASE_URL": "mysql://arca:hunter2@db/arca"},
     ["ARCA_DATABASE_URL must be a sqlite:///PATH or postgresql", "mysql://arca:********@db/arca"]),
    ({"ARCA_LOG_FORMAT": "xml"}, ["ARCA_LOG_FORMAT must be one of text, json, not 'xml'"]),
    ({"ARCA_WEBHOOKS": "maybe"}, ["ARCA_WEBHOOKS must be 1 or 0"]),
    ({"ARCA_FORWARDED_ALLOW_IPS": "10.0.0.1,proxy.local"}, ["ARCA_FORWARDED_ALLOW_IPS must list IP addresses",
                                                            "'proxy.local'"]),
    ({"ARCA_ACCOUNT_ID": "12345"}, ["ARCA_ACCOUNT_ID must be 12 digits"]),
    ({"ARCA_BASE_URL": "arca.example.com"}, ["ARCA_BASE_URL must be an http:// or https:// URL"]),
    ({"ARCA_SECRET_KEY_FILE": "/nonexistent/arca-key"},
     ["ARCA_SECRET_KEY_FILE: cannot read /nonexistent/arca-key: No such file or directory"]),
    ({"ARCA_CONFIG": "/nonexistent/arca.toml"}, ["ARCA_CONFIG: cannot read /nonexistent/arca.toml"]),
]


@pytest.mark.parametrize("env, expected", BAD, ids=[next(iter(e)) + "=" + next(iter(e.values())) for e, _ in BAD])
def test_a_bad_setting_stops_serve_with_one_line_naming_it(tmp_path, env, expected):
    proc = run("serve", "--port", "0", env=clean_env(ARCA_DATA_DIR=str(tmp_path / "data"), **env), cwd=tmp_path)
    one_line_error(proc, *expected)
    assert "hunter2" not in proc.stderr


def test_an_unreachable_database_stops_serve_and_admin_with_one_line(tmp_path):
    with refused_port() as port:
        url = f"postgresql+psycopg://arca:hunter2@127.0.0.1:{port}/arca"
        env = clean_env(ARCA_DATA_DIR=str(tmp_path / "data"), ARCA_DATABASE_URL=url)
        # With several workers the schema is upgraded in a child process: its refusal is the same line.
        for args in (("serve", "--port", "0"), ("serve", "--port", "0", "--workers", "2"), ("admin", "create-user", "x")):
            line = one_line_error(run(*args, env=env, cwd=tmp_path), f"arca {args[0]}: ARCA_DATABASE_URL: cannot "
                                  f"reach the database postgresql+psycopg://arca:********@127.0.0.1:{port}/arca",
                                  "refused")
            assert "hunter2" not in line


def test_a_database_migrated_by_a_newer_release_is_named(tmp_path):
    import sqlite3

    data = tmp_path / "data"
    env = clean_env(ARCA_DATA_DIR=str(data))
    assert run("admin", "migrate", env=env, cwd=tmp_path).returncode == 0
    with sqlite3.connect(data / "arca.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    one_line_error(run("serve", "--port", "0", env=env, cwd=tmp_path),
                   "ARCA_DATABASE_URL: cannot upgrade the schema", "9999", "newer Arca")


def test_a_config_file_holds_the_same_names_and_the_environment_wins(tmp_path):
    secret = tmp_path / "secret-key"
    secret.write_text("file-held-server-key-0123456789\n")
    token = tmp_path / "metrics-token"
    token.write_text("metrics-token-abcdef")
    config = tmp_path / "arca.toml"
    config.write_text(f'ARCA_ACCOUNT_ID = "111122223333"\nARCA_REGION = "eu-west-1"\n'
                      f'ARCA_WEBHOOK_MAX_ATTEMPTS = 7\nARCA_S3_PRESIGNED_DOWNLOADS = true\n'
                      f'ARCA_FORWARDED_ALLOW_IPS = ["10.0.0.1", "10.1.0.0/16"]\n'
                      f'ARCA_METRICS_TOKEN_FILE = "{token}"\n'
                      f'ARCA_DATABASE_URL = "postgresql+psycopg://arca:pg-password@db/arca"\n')
    env = clean_env(ARCA_CONFIG=str(config), ARCA_REGION="us-west-2", ARCA_SECRET_KEY_FILE=str(secret),
                    ARCA_DATA_DIR=str(tmp_path / "data"))
    proc = run("config", "show", "--output", "json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = {row["name"]: row for row in json.loads(proc.stdout)["settings"]}
    assert shown["ARCA_ACCOUNT_ID"] == {"name": "ARCA_ACCOUNT_ID", "value": "111122223333",
                                        "source": f"file {config}"}
    assert shown["ARCA_REGION"]["value"] == "us-west-2" and shown["ARCA_REGION"]["source"] == "environment"
    assert shown["ARCA_WEBHOOK_MAX_ATTEMPTS"]["value"] == "7"
    assert shown["ARCA_S3_PRESIGNED_DOWNLOADS"]["value"] == "1"
    assert shown["ARCA_FORWARDED_ALLOW_IPS"]["value"] == "10.0.0.1,10.1.0.0/16"
    assert shown["ARCA_SECRET_KEY"] == {"name": "ARCA_SECRET_KEY", "value": "********",
                                        "source": f"ARCA_SECRET_KEY_FILE={secret} (environment)"}
    assert shown["ARCA_METRICS_TOKEN"]["source"] == f"ARCA_METRICS_TOKEN_FILE={token} (file {config})"
    assert shown["ARCA_DATABASE_URL"]["value"] == "postgresql+psycopg://arca:********@db/arca"
    assert shown["ARCA_PORT"] == {"name": "ARCA_PORT", "value": "8080", "source": "default"}
    text = run("config", "show", env=env, cwd=tmp_path)
    assert text.returncode == 0 and f"ARCA_CONFIG={config}" in text.stdout
    for secret_text in ("file-held-server-key", "metrics-token-abcdef", "pg-password"):
        assert secret_text not in proc.stdout + text.stdout


def test_a_server_runs_on_settings_from_the_config_file_and_secret_files(tmp_path):
    secret = tmp_path / "secret-key"
    secret.write_text("file-held-server-key-0123456789\n")
    token = tmp_path / "metrics-token"
    token.write_text("metrics-token-abcdef\n")
    config = tmp_path / "arca.toml"
    config.write_text(f'ARCA_ACCOUNT_ID = "111122223333"\nARCA_METRICS_TOKEN_FILE = "{token}"\n'
                      f'ARCA_SECRET_KEY_FILE = "{secret}"\n')
    srv = start_server(tmp_path / "arca", env={"ARCA_CONFIG": str(config)})
    try:
        srv.create_repo("cfg", "libs")
        assert srv.boto().describe_domain(domain="cfg")["domain"]["owner"] == "111122223333"
        assert httpx.get(srv.url + "/metrics", timeout=30).status_code == 401
        ok = httpx.get(srv.url + "/metrics", headers={"Authorization": "Bearer metrics-token-abcdef"}, timeout=30)
        assert ok.status_code == 200
        # the key came from the file: none was generated into the data dir
        assert not (tmp_path / "arca" / "storage" / "secret.key").exists()
        assert "file-held-server-key" not in srv.log() and "metrics-token-abcdef" not in srv.log()
    finally:
        srv.stop()


@pytest.mark.parametrize("config_text, env, problem", [
    ("ARCA_PROT = 8080\n", {}, "ARCA_CONFIG: ARCA_PROT in {config} is not a setting"),
    ("PORT = 8080\n", {}, "ARCA_CONFIG: PORT in {config} is not a setting name (ARCA_...)"),
    ("[arca]\nARCA_PORT = 1\n", {}, "ARCA_CONFIG: arca in {config} is not a setting name"),
    ("ARCA_PORT = {{ a = 1 }}\n", {}, "ARCA_PORT in {config} must be a string, number, boolean or list of them"),
    ("ARCA_PORT = \n", {}, "ARCA_CONFIG: {config} is not valid TOML"),
    ("ARCA_PORT = \"eighty\"\n", {}, "ARCA_PORT must be a whole number, not 'eighty' (from file {config})"),
    ("ARCA_SECRET_KEY = \"a\"\nARCA_SECRET_KEY_FILE = \"/x\"\n", {},
     "ARCA_SECRET_KEY and ARCA_SECRET_KEY_FILE are both set (in file {config})"),
    ("", {"ARCA_METRICS_TOKEN": "t", "ARCA_METRICS_TOKEN_FILE": "{empty}"},
     "ARCA_METRICS_TOKEN and ARCA_METRICS_TOKEN_FILE are both set: set one of them"),
    ("", {"ARCA_METRICS_TOKEN_FILE": "{empty}"}, "ARCA_METRICS_TOKEN_FILE: {empty} is empty"),
])
def test_refused_configurations_name_the_setting_and_the_file(tmp_path, config_text, env, problem):
    config, empty = tmp_path / "arca.toml", tmp_path / "empty"
    empty.write_text("\n")
    config.write_text(config_text.format(config=config, empty=empty))
    names = {"config": config, "empty": empty}
    with pytest.raises(SettingError) as exc:
        settings_from_env({"ARCA_CONFIG": str(config), **{k: v.format(**names) for k, v in env.items()}})
    assert problem.format(**names) in str(exc.value)


def test_the_environment_wins_over_a_file_given_value_file(tmp_path):
    held = tmp_path / "held"
    held.write_text("from-a-file\n")
    config = tmp_path / "arca.toml"
    config.write_text(f'ARCA_METRICS_TOKEN_FILE = "{held}"\nARCA_HOST = "0.0.0.0"\n')
    settings = settings_from_env({"ARCA_CONFIG": str(config), "ARCA_METRICS_TOKEN": "from-env"})
    assert (settings.metrics_token, settings.host) == ("from-env", "0.0.0.0")
    assert settings_from_env({"ARCA_CONFIG": str(config)}).metrics_token == "from-a-file"
