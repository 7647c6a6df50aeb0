"""Real pip (a fresh venv's pip 23 and the current pip from PyPI) and uv against a real `arca serve`.

A recording reverse proxy sits between the client and the server, so what the client fetched is
asserted from the server side: PEP 658 metadata instead of wheels, no request at all for files
whose Requires-Python excludes this interpreter."""

from __future__ import annotations

import hashlib
import sys

import pytest

from tests import pypi_support as ps
from tests.support.server import clean_env, require_tool

DEPS_CHAIN = ("zeta-gamma", "demo-beta", "demo-alpha")


@pytest.fixture(scope="module")
def pythons(tmp_path_factory) -> dict[str, str]:
    """'pip23': a fresh venv with the pip that Python bundles (23.x here); 'pip-current': a fresh venv
    with pip upgraded from PyPI."""
    root = tmp_path_factory.mktemp("venvs")
    out = {}
    for label in ("pip23", "pip-current"):
        venv = root / label
        ps.run([sys.executable, "-m", "venv", venv])
        py = str(venv / "bin" / "python")
        if label == "pip-current":
            ps.run(ps.pip_cmd(py, "install", "-U", "pip"), env=clean_env())
        out[label] = py
    versions = {k: ps.run([py, "-m", "pip", "--version"]).stdout.split()[1] for k, py in out.items()}
    assert versions["pip23"].startswith("23."), versions
    assert int(versions["pip-current"].split(".")[0]) >= 24, versions
    return out


@pytest.fixture(scope="module")
def chain(server, tmp_path_factory):
    """One repository: zeta-gamma → Demo_Beta → Demo.Alpha, and Demo.Alpha 2.0 needing Python >= 4."""
    d, r = "clients", "py"
    server.create_repo(d, r)
    token = server.token(d)
    dist = tmp_path_factory.mktemp("chain")
    files = [
        ps.make_wheel(dist, "Demo.Alpha", "1.0", summary="alpha"),
        ps.make_sdist(dist, "Demo.Alpha", "1.0", summary="alpha"),
        ps.make_wheel(dist, "Demo.Alpha", "2.0", requires_python=">=4"),
        ps.make_sdist(dist, "Demo.Alpha", "2.0", requires_python=">=4"),
        ps.make_wheel(dist, "Demo_Beta", "1.0", requires=["demo.alpha>=1.0"]),
        ps.make_wheel(dist, "zeta_gamma", "3.0", requires=["Demo-Beta"]),
    ]
    ps.twine_upload(server.endpoint(d, "pypi", r), token, files)
    return {"domain": d, "repo": r, "token": token, "files": {f.name: f for f in files}}


def _index(hostport: str, chain: dict) -> str:
    return f"http://aws:{chain['token']}@{hostport}/{chain['domain']}/pypi/{chain['repo']}/simple/"


def _fetched(proxy) -> list[str]:
    return [p.rsplit("/", 1)[-1] for p in proxy.paths() if not p.endswith("/")]


@pytest.mark.parametrize("pip", ["pip23", "pip-current"])
def test_pip_installs_a_dependency_chain_from_metadata_only(server, chain, pythons, pip, tmp_path):
    py = pythons[pip]
    with ps.RecordingProxy(server.url) as proxy:
        target = tmp_path / "site"
        ps.run(ps.pip_cmd(py, "install", "--target", str(target), "--index-url", _index(proxy.hostport, chain),
                          "zeta-gamma"))
        fetched = _fetched(proxy)
        pages = [p for p in proxy.paths() if p.endswith("/")]
    out = ps.run([py, "-c", "import zeta_gamma, demo_beta, demo_alpha; print(demo_alpha.VERSION)"],
                 env=clean_env(PYTHONPATH=str(target)))
    assert out.stdout.strip() == "1.0"
    base = f"/{chain['domain']}/pypi/{chain['repo']}/simple/"
    assert sorted(pages) == sorted(base + n + "/" for n in DEPS_CHAIN)
    wheels = ["zeta_gamma-3.0-py3-none-any.whl", "demo_beta-1.0-py3-none-any.whl", "demo_alpha-1.0-py3-none-any.whl"]
    # PEP 658: each chosen wheel's metadata first; then exactly the chosen wheels, nothing else.
    assert sorted(f for f in fetched if f.endswith(".metadata")) == sorted(w + ".metadata" for w in wheels)
    assert sorted(f for f in fetched if not f.endswith(".metadata")) == sorted(wheels)
    for w in wheels:
        assert fetched.index(w + ".metadata") < fetched.index(w)
    # Requires-Python: Demo.Alpha 2.0 was dropped from the page alone, never fetched.
    assert not [f for f in fetched if "2.0" in f]


@pytest.mark.parametrize("pip", ["pip23", "pip-current"])
def test_pip_download_skips_requires_python_and_reports_it(server, chain, pythons, pip, tmp_path):
    py = pythons[pip]
    with ps.RecordingProxy(server.url) as proxy:
        index = _index(proxy.hostport, chain)
        ps.run(ps.pip_cmd(py, "download", "--no-deps", "-d", str(tmp_path / "dl"), "--index-url", index,
                          "Demo.Alpha"))
        assert [p.name for p in (tmp_path / "dl").iterdir()] == ["demo_alpha-1.0-py3-none-any.whl"]
        failed = ps.run(ps.pip_cmd(py, "download", "--no-deps", "-d", str(tmp_path / "dl2"), "--index-url", index,
                                   "demo-alpha==2.0"), check=False)
        fetched = _fetched(proxy)
    assert failed.returncode != 0
    assert "Requires-Python >=4" in failed.stderr and "2.0" in failed.stderr
    assert not [f for f in fetched if "2.0" in f], fetched


@pytest.mark.parametrize("pip", ["pip23", "pip-current"])
def test_pip_downloads_and_builds_an_sdist(server, chain, pythons, pip, tmp_path):
    py = pythons[pip]
    dest = tmp_path / "dl"
    ps.run(ps.pip_cmd(py, "download", "--no-deps", "--no-binary", ":all:", "-d", str(dest), "--index-url",
                      _index(server.hostport, chain), "demo_alpha"))
    got = dest / "demo_alpha-1.0.tar.gz"
    assert got.read_bytes() == chain["files"]["demo_alpha-1.0.tar.gz"].read_bytes()
    target = tmp_path / "site"
    ps.run(ps.pip_cmd(py, "install", "--no-deps", "--no-binary", ":all:", "--target", str(target), "--index-url",
                      _index(server.hostport, chain), "demo-alpha"))
    assert (target / "demo_alpha" / "__init__.py").exists()


def test_pip_verifies_our_hashes_and_refuses_a_tampered_one(server, chain, pythons, tmp_path):
    py = pythons["pip-current"]
    wheel = "demo_alpha-1.0-py3-none-any.whl"
    real = hashlib.sha256(chain["files"][wheel].read_bytes()).hexdigest()
    # --require-hashes with the index's hash: pip checks the downloaded bytes against it.
    reqs = tmp_path / "req.txt"
    reqs.write_text(f"demo-alpha==1.0 --hash=sha256:{real}\n")
    ps.run(ps.pip_cmd(py, "download", "--no-deps", "--require-hashes", "-r", str(reqs), "-d", str(tmp_path / "a"),
                      "--index-url", _index(server.hostport, chain)))
    assert (tmp_path / "a" / wheel).exists()

    def tamper(path: str, body: bytes) -> bytes:
        return body.replace(real.encode(), b"0" * 64) if path.endswith("/demo-alpha/") else body

    with ps.RecordingProxy(server.url, rewrite=tamper) as proxy:
        bad = ps.run(ps.pip_cmd(py, "download", "--no-deps", "-d", str(tmp_path / "b"), "--index-url",
                                _index(proxy.hostport, chain), "demo-alpha"), check=False)
    assert bad.returncode != 0
    assert "DO NOT MATCH THE HASHES" in bad.stderr
    assert not (tmp_path / "b" / wheel).exists()


def test_uv_pip_install(server, chain, tmp_path):
    uv = require_tool("uv")
    target = tmp_path / "site"
    with ps.RecordingProxy(server.url) as proxy:
        ps.run([uv, "pip", "install", "--no-cache", "--python", sys.executable, "--target", str(target),
                "--index-url", _index(proxy.hostport, chain), "zeta-gamma"],
               env=clean_env(UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never"))
        fetched = _fetched(proxy)
    out = ps.run([sys.executable, "-c", "import zeta_gamma, demo_beta, demo_alpha; print(demo_alpha.VERSION)"],
                 env=clean_env(PYTHONPATH=str(target)))
    assert out.stdout.strip() == "1.0"
    assert "demo_beta-1.0-py3-none-any.whl.metadata" in fetched
    assert not [f for f in fetched if "2.0" in f], fetched


def test_unknown_project_and_missing_credentials(server, chain, pythons, tmp_path):
    py = pythons["pip-current"]
    missing = ps.run(ps.pip_cmd(py, "download", "-d", str(tmp_path), "--index-url", _index(server.hostport, chain),
                                "no-such-project"), check=False)
    assert missing.returncode != 0 and "from versions: none" in missing.stderr
    with ps.RecordingProxy(server.url) as proxy:
        anon = f"http://{proxy.hostport}/{chain['domain']}/pypi/{chain['repo']}/simple/"
        denied = ps.run(ps.pip_cmd(py, "download", "-d", str(tmp_path), "--index-url", anon, "demo-alpha"),
                        check=False)
    # non-interactive pip only says "from versions: none"; the server answered the challenge
    assert denied.returncode != 0 and "from versions: none" in denied.stderr
    assert proxy.requests and all(status == 401 for _m, _p, status in proxy.requests)


def test_status_changes_show_in_pips_view(server, pythons, unique, tmp_path):
    d, r = f"st{unique}", "py"
    server.create_repo(d, r)
    token = server.token(d)
    files = [ps.make_wheel(tmp_path / "w", "Flip_Flop", v) for v in ("1.0", "2.0")]
    ps.twine_upload(server.endpoint(d, "pypi", r), token, files)
    py = pythons["pip-current"]
    index = f"http://aws:{token}@{server.hostport}/{d}/pypi/{r}/simple/"

    def resolve(spec="flip-flop"):
        dest = tmp_path / f"dl{len(list(tmp_path.iterdir()))}"
        proc = ps.run(ps.pip_cmd(py, "download", "--no-deps", "-d", str(dest), "--index-url", index, spec),
                      check=False)
        return [p.name for p in dest.iterdir()] if proc.returncode == 0 else proc.stderr

    def status(version, target):
        server.cli("update-package-versions-status", "--domain", d, "--repository", r, "--format", "pypi",
                   "--package", "flip-flop", "--versions", version, "--target-status", target)

    assert resolve() == ["flip_flop-2.0-py3-none-any.whl"]
    status("2.0", "Unlisted")
    # Unlisted is a PEP 592 yank on the index: an unpinned install skips it, an exact pin takes it.
    assert resolve() == ["flip_flop-1.0-py3-none-any.whl"]
    assert resolve("flip-flop==2.0") == ["flip_flop-2.0-py3-none-any.whl"]
    status("2.0", "Archived")
    assert resolve() == ["flip_flop-1.0-py3-none-any.whl"]
    status("2.0", "Published")
    assert resolve() == ["flip_flop-2.0-py3-none-any.whl"]
    status("1.0", "Archived")
    status("2.0", "Archived")
    err = resolve()
    assert isinstance(err, str) and "from versions: none" in err
    listed = server.boto().list_package_versions(domain=d, repository=r, format="pypi", package="flip-flop")
    assert {v["version"]: v["status"] for v in listed["versions"]} == {"1.0": "Archived", "2.0": "Archived"}


def test_uv_skips_an_unlisted_version_unless_pinned(server, unique, tmp_path):
    """Unlisted is a yank on the index (PEP 592), and uv treats it so: the unpinned install takes
    1.0, `==2.0` installs 2.0."""
    uv = require_tool("uv")
    d, r = f"uy{unique}", "py"
    server.create_repo(d, r)
    token = server.token(d)
    files = [ps.make_wheel(tmp_path / "w", "uv-yank", v) for v in ("1.0", "2.0")]
    ps.twine_upload(server.endpoint(d, "pypi", r), token, files)
    server.cli("update-package-versions-status", "--domain", d, "--repository", r, "--format", "pypi",
               "--package", "uv-yank", "--versions", "2.0", "--target-status", "Unlisted")
    index = f"http://aws:{token}@{server.hostport}/{d}/pypi/{r}/simple/"
    env = clean_env(UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    for spec, want in (("uv-yank", "1.0"), ("uv-yank==2.0", "2.0")):
        target = tmp_path / f"t-{want}"
        ps.run([uv, "pip", "install", "--no-cache", "--python", sys.executable, "--target", str(target),
                "--index-url", index, spec], env=env)
        assert (target / f"uv_yank-{want}.dist-info").is_dir(), spec
