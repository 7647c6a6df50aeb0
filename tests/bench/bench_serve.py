"""Serving benchmark (issue 19's table), on demand, not collected by pytest:

    .venv/bin/python -m tests.bench.bench_serve [--duration 3] [--rounds 3] [--workdir /tmp/arca-bench-serve]

Every workload of the table, side by side with the peers and ceilings this machine can start on
loopback, in one run: Arca (`arca serve`, SQLite + disk, a token on every request) with one worker,
with its default worker count (one per CPU) and with 2 (the Docker image's default), nginx serving the same files statically,
Python's `http.server`, devpi-server, pypiserver, and Verdaccio read anonymously and with a token.
Load comes from wrk (one thread, keep-alive, c1 and c32). The cells are interleaved (every
workload and server once per round, `--rounds` rounds) and each figure is the median of the
rounds. Beside each figure: the server's CPU time per request (user + system of its whole process
tree, from /proc) and the 1-minute load average while it ran. The last column is Arca (default
workers) divided by the goal's reference, and whether the goal is met.

Also: `pip download` of 50 packages and `npm install` of 30 packages from cold caches (medians of
`--rounds`), against Arca, nginx serving a static copy of Arca's own index pages (with the PEP 658
metadata files) and packuments, and devpi (pip).

Uploads, each round, timed as whole client commands with new files for every server: `twine upload`
of 200 small wheels (peer: pypiserver holding the same data set as the Arca servers, as in the
issue's run; pypiserver started empty is printed beside it), `npm publish` of 50 packages (one
command each, summed; peer: Verdaccio) and one `curl --request PUT` of 200 Maven files (no peer takes PUTs: the figure
alone). `--uploads 20,5,20` runs fewer. Goal: Arca no slower than the peer.

Memory, after all the load: the RSS of each Arca's whole process tree (parent + workers), sampled
every 20 ms during a 1 GiB PUT to a Maven path (curl, streamed from a sparse file under the work
dir, deleted right after) and a 1 GiB GET of it, and 1 s after each (per process and as PSS too).
Goal: < 150 MiB, flat during the transfer.

Install what it needs (apt-get update first):
    apt-get install -y wrk nginx-light             # load generator, static ceiling
    devpi-server + devpi-client: installed by this script into <tools>/devpi (a venv, from PyPI)
    pypiserver: the test extra (.venv); Verdaccio: tests/upstream_support.install_verdaccio (npm)
The machine is shared: compare columns of one run, not absolute numbers across runs."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import pypi_support as ps  # noqa: E402
from tests.bench.bench_npm import bodies_for, publish_all  # noqa: E402
from tests.bench.bench_pypi import insert_direct  # noqa: E402
from tests.npm_support import (escape, make_tarball, publish_body, write_consumer, write_npmrc,  # noqa: E402
                               write_package)
from tests.support.nginx import Nginx, server_block  # noqa: E402
from tests.support.server import ArcaServer, clean_env, start_server  # noqa: E402
from tests.upstream_support import Process, Verdaccio, start_pypiserver, start_static  # noqa: E402

MB = 1_000_000
BIG = 50 * MB
CLK = os.sysconf("SC_CLK_TCK")
JSON_V1 = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON_V1}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
GROUP = "com/acme/app/1.0.0"


# ---- measuring ---------------------------------------------------------------------------------------

def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def wrk(url: str, conns: int, duration: int, headers: dict[str, str], pids: list[int]) -> dict:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "30s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    load = load_average()
    before = cpu_seconds(pids)
    proc = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 120)
    cpu = cpu_seconds(pids) - before
    out = proc.stdout
    found = re.search(r"(\d+) requests in", out)
    if found is None:
        raise RuntimeError(f"wrk {url}: {out}{proc.stderr}")
    requests = int(found.group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = re.search(r"Latency\s+([\d.]+)(us|ms|s|m)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or requests == 0:
        raise RuntimeError(f"wrk {url}: {out}")
    return {"rps": rps, "cpu_ms": 1000 * cpu / requests, "latency_ms": float(lat.group(1)) * _UNITS[lat.group(2)],
            "load": load, "errors": errors.group(1) if errors else ""}


def timed(cmd: list[str], cwd: Path, env: dict, pids: list[int]) -> dict:
    load = load_average()
    before = cpu_seconds(pids)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {"seconds": took, "cpu_ms": 1000 * (cpu_seconds(pids) - before), "load": load}


# ---- peers ---------------------------------------------------------------------------------------------

STATIC_SERVER = """    root {root};
    location /npm/ {{ default_type application/json; try_files $uri $uri/index.json =404; }}"""


class Devpi(Process):
    """devpi-server (in its own venv under the tools dir), index root/dev filled with twine."""

    def __init__(self, tools: Path, work: Path):
        venv = tools / "devpi"
        if not (venv / "bin" / "devpi-server").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "devpi-server", "devpi-client"],
                           env=clean_env(), check=True, timeout=900)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        subprocess.run([str(venv / "bin" / "devpi-init"), "--serverdir", str(work / "server"), "--root-passwd",
                        "root", "--no-root-pypi"], check=True, capture_output=True, env=clean_env())
        super().__init__([venv / "bin" / "devpi-server", "--serverdir", work / "server", "--host", "127.0.0.1",
                          "--port", "0"], work / "devpi.log", ready="/+api")
        client = [str(venv / "bin" / "devpi"), "--clientdir", str(work / "client")]
        for args in (["use", self.url], ["login", "root", "--password", "root"],
                     ["index", "-c", "dev", "volatile=False", "bases="]):
            subprocess.run(client + args, check=True, capture_output=True, env=clean_env())
        self.index = f"{self.url}/root/dev/"

    def file_url(self, project: str, filename: str) -> str:
        page = self.index + f"+simple/{project}/"
        href = re.search(r'href="([^"#]*' + re.escape(filename) + ')', httpx.get(page).text).group(1)
        return urljoin(page, href)

    def upload(self, files: list[Path]) -> None:
        subprocess.run([str(Path(sys.executable).parent / "twine"), "upload", "--disable-progress-bar",
                        "--repository-url", self.index, "-u", "root", "-p", "root", *map(str, files)],
                       check=True, capture_output=True, env=clean_env(), timeout=900)


# ---- the data set ----------------------------------------------------------------------------------------

@dataclass
class Data:
    files: Path            # wheels to upload
    static: Path           # the same files laid out for nginx / http.server
    small_wheels: list[Path] = field(default_factory=list)
    fifty: list[Path] = field(default_factory=list)
    big_wheel: Path | None = None
    big_tgz: bytes = b""
    jar: bytes = b""
    big_jar: bytes = b""


def make_data(work: Path) -> Data:
    d = Data(work / "files", work / "static")
    for p in (d.files, d.static):
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir(parents=True)
    d.small_wheels = [ps.make_wheel(d.files, "small-project", f"1.{i}", requires_python=">=3.8") for i in range(20)]
    d.fifty = [ps.make_wheel(d.files, f"bench-pkg-{i}", "1.0") for i in range(50)]
    big = d.files / ps.wheel_filename("big-wheel", "1.0")
    big.write_bytes(ps.wheel_bytes("big-wheel", "1.0", extra_files={"big_wheel/data.bin": os.urandom(BIG)}))
    d.big_wheel = big
    d.big_tgz = make_tarball("big-tarball", "1.0.0", files={"data.bin": os.urandom(BIG)})
    d.jar = os.urandom(64 * 1024)
    d.big_jar = os.urandom(BIG)
    return d


def fill_arca(arca: ArcaServer, d: Data) -> str:
    """Upload the data set; returns the token the benchmark uses."""
    arca.create_repo("bench", "py")
    arca.create_repo("bench", "js")
    arca.create_repo("bench", "mvn")
    token = arca.token("bench")
    py = arca.endpoint("bench", "pypi", "py")
    for p in d.small_wheels + d.fifty + [d.big_wheel]:
        name, version = p.name.split("-")[0].replace("_", "-"), p.name.split("-")[1]
        data = p.read_bytes()
        ps.raw_upload(py, token, ps.form_for(name, version, data), p.name, data).raise_for_status()
    insert_direct(arca.env, "bench", "py", [ps.make_wheel(d.files / "huge", "huge-project", f"0.{i}")
                                            for i in range(2000)])
    js = arca.endpoint("bench", "npm", "js")
    bodies = bodies_for("bench-doc", 20) + [(f"dep-{i}", publish_body(f"dep-{i}", "1.0.0")) for i in range(30)]
    bodies.append(("big-tarball", publish_body("big-tarball", "1.0.0", d.big_tgz)))
    publish_all(js, token, bodies)
    mvn = arca.endpoint("bench", "maven", "mvn")
    auth = ("aws", token)
    httpx.put(f"{mvn}{GROUP}/app-1.0.0.jar", content=d.jar, auth=auth).raise_for_status()
    httpx.put(f"{mvn}{GROUP}/app-1.0.0-big.jar", content=d.big_jar, auth=auth, timeout=300).raise_for_status()
    meta = (b"<metadata><groupId>com.acme</groupId><artifactId>app</artifactId><versioning><versions>"
            b"<version>1.0.0</version></versions></versioning></metadata>")
    httpx.put(f"{mvn}com/acme/app/maven-metadata.xml", content=meta, auth=auth).raise_for_status()
    return token


def fill_static(arca: ArcaServer, d: Data, token: str, nginx_url: str) -> None:
    """The same files as a static tree: for pip, Arca's own HTML pages (hashes and PEP 658
    metadata links, so pip does the same work against both) with each file and its .metadata beside
    its page; packuments for npm; the Maven layout."""
    s = d.static
    (s / "pypi" / "files").mkdir(parents=True)
    projects: dict[str, list[Path]] = {}
    for p in d.small_wheels + d.fifty + [d.big_wheel]:
        shutil.copy(p, s / "pypi" / "files" / p.name)
        projects.setdefault(p.name.split("-")[0].replace("_", "-"), []).append(p)
    py = arca.endpoint("bench", "pypi", "py") + "simple/"
    html = {"Accept": "text/html"}
    with httpx.Client(auth=("aws", token), timeout=120) as c:
        for name, files in projects.items():
            page = s / "pypi" / "simple" / name / "index.html"
            page.parent.mkdir(parents=True)
            page.write_bytes(c.get(f"{py}{name}/", headers=html).raise_for_status().content)
            for f in files:
                shutil.copy(f, page.parent / f.name)
                meta = c.get(f"{py}{name}/{f.name}.metadata")
                if meta.status_code == 200:
                    (page.parent / f"{f.name}.metadata").write_bytes(meta.content)
        (s / "pypi" / "simple" / "index.html").write_bytes(c.get(py, headers=html).raise_for_status().content)
    js = arca.endpoint("bench", "npm", "js")
    with httpx.Client(auth=("aws", token), timeout=120) as c:
        for name in ["bench-doc", "big-tarball"] + [f"dep-{i}" for i in range(30)]:
            doc = c.get(js + escape(name)).json()
            for v in doc["versions"].values():
                tgz = c.get(v["dist"]["tarball"]).content
                target = s / "npm" / name / "-" / v["dist"]["tarball"].rsplit("/", 1)[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tgz)
                v["dist"]["tarball"] = f"{nginx_url}/npm/{name}/-/{target.name}"
            (s / "npm" / name / "index.json").write_text(json.dumps(doc))
    (s / "maven" / GROUP).mkdir(parents=True)
    (s / "maven" / GROUP / "app-1.0.0.jar").write_bytes(d.jar)
    (s / "maven" / GROUP / "app-1.0.0-big.jar").write_bytes(d.big_jar)


# ---- uploads: whole client commands -------------------------------------------------------------------

UPLOADS = "200,50,200"  # the counts: twine upload of wheels, npm publish of packages, curl PUT of Maven files


@dataclass
class Uploads:
    """Where one server takes uploads (None: it takes none of that kind)."""
    name: str
    pids: list[int]
    pypi: tuple[str, str, str] | None = None  # twine's --repository-url, user, password
    npm: tuple[str, str] | None = None        # registry URL, token (.npmrc)
    maven: tuple[str, str] | None = None      # repository URL, token (Basic aws:TOKEN)
    runs: dict[str, list[dict]] = field(default_factory=dict)


def twine_upload(u: Uploads, work: Path, version: str, count: int) -> dict:
    """One `twine upload` of `count` new small wheels (one per project)."""
    wheels = [ps.make_wheel(work, f"up-wheel-{i}", version) for i in range(count)]
    url, user, password = u.pypi
    return timed([ps.TWINE, "upload", "--disable-progress-bar", "--repository-url", url, "-u", user, "-p", password,
                  *map(str, wheels)], work, clean_env(TWINE_NON_INTERACTIVE="1"), u.pids)


def npm_publish(u: Uploads, work: Path, version: str, count: int) -> dict:
    """`npm publish` of `count` new packages, one command each; the commands' times are summed."""
    url, token = u.npm
    write_npmrc(work / ".npmrc", url, token)
    env = clean_env(npm_config_userconfig=str(work / ".npmrc"), npm_config_cache=str(work / "cache"),
                    npm_config_update_notifier="false")
    runs = [timed(["npm", "publish"], write_package(work / f"up-pkg-{i}", f"up-pkg-{i}", version), env, u.pids)
            for i in range(count)]
    return {"seconds": sum(r["seconds"] for r in runs), "cpu_ms": sum(r["cpu_ms"] for r in runs),
            "load": runs[0]["load"]}


def curl_put(u: Uploads, work: Path, version: str, count: int) -> dict:
    """One `curl --request PUT` of `count` Maven files, laid out as `mvn deploy` sends them: per
    artifact a jar, its pom and their .sha1 files (no maven-metadata.xml: the versions stay Unfinished)."""
    url, token = u.maven
    args = []
    for j in range((count + 3) // 4):
        art = f"up-art-{j}"
        pom = (f"<project><modelVersion>4.0.0</modelVersion><groupId>com.acme.up</groupId><artifactId>{art}"
               f"</artifactId><version>{version}</version></project>").encode()
        for ext, body in (("jar", os.urandom(8 * 1024)), ("pom", pom)):
            name = f"{art}-{version}.{ext}"
            for fname, data in ((name, body), (f"{name}.sha1", hashlib.sha1(body).hexdigest().encode())):
                (work / fname).write_bytes(data)
                args += ["--upload-file", str(work / fname), f"{url}com/acme/up/{art}/{version}/{fname}"]
    args = args[:3 * count]  # --upload-file, file, URL
    return timed(["curl", "-sS", "--fail", "--fail-early", "--user", f"aws:{token}", "--request", "PUT", *args],
                 work, clean_env(), u.pids)


UPLOAD_LABEL = "uploads: twine upload, npm publish, curl PUT"
UPLOAD_KINDS = (("twine upload", "pypi", twine_upload, "pypiserver"), ("npm publish", "npm", npm_publish, "verdaccio"),
                ("curl PUT", "maven", curl_put, None))


def upload_round(servers: list[Uploads], work: Path, rnd: int, counts: list[int]) -> None:
    """Every kind of upload to every server that takes it, each with files of its own (the Arca
    servers share one blob store, which must not find the bytes already there)."""
    for (kind, attr, run, _), count in zip(UPLOAD_KINDS, counts):
        for k, u in enumerate(servers):
            if getattr(u, attr) is None:
                continue
            dest = work / f"upload-{rnd}-{k}-{attr}"
            dest.mkdir(parents=True)
            r = run(u, dest, f"1.{rnd}.{k}", count)
            u.runs.setdefault(kind, []).append(r)
            print(f"  {kind} {count} {u.name}: {r['seconds']:.2f} s, {r['cpu_ms']:.0f} server CPU ms, "
                  f"load {r['load']:.1f}", flush=True)
            shutil.rmtree(dest)


def print_uploads(servers: list[Uploads], counts: list[int], arca_name: str) -> None:
    print("\n| upload (whole command) | server: median s (server CPU ms, load) | Arca ÷ peer | goal |")
    print("|---|---|---|---|")
    for (kind, _, _, peer), count in zip(UPLOAD_KINDS, counts):
        cells, value = [], {}
        for u in servers:
            runs = u.runs.get(kind)
            if runs:
                value[u.name] = median([r["seconds"] for r in runs])
                cells.append(f"{u.name} {value[u.name]:.2f} ({median([r['cpu_ms'] for r in runs]):.0f}, "
                             f"{median([r['load'] for r in runs]):.1f})")
        if peer is None:
            verdict = "— (no peer takes PUTs) | keep: figure reported"
        else:
            ratio = value.get(arca_name, float("nan")) / value.get(peer, float("nan"))
            verdict = f"{ratio:.2f} vs {peer}"
            if f"{peer}-empty" in value:
                verdict += f" ({value.get(arca_name, float('nan')) / value[f'{peer}-empty']:.2f} vs {peer}-empty)"
            verdict += f" | keep (<= 1.00) {'✔' if ratio <= 1.0 else '✘'}"
        print(f"| {kind} of {count} | {' · '.join(cells)} | {verdict} |")


# ---- memory: the serve process tree's RSS while it moves a 1 GiB file ---------------------------------------

MEMORY_LABEL = "memory: RSS during and after a 1 GiB PUT + GET"
RSS_GOAL_MIB = 150
FLAT_MIB = 16  # "flat during the transfer": the peak at most this much above the RSS before it


def _kib_field(pids: list[int], proc_file: str, field: str) -> list[float]:
    """A `field: N kB` line of /proc/PID/`proc_file` for each process still there, MiB."""
    out = []
    for p in pids:
        try:
            out.append(next(int(line.split()[1]) for line in Path(f"/proc/{p}/{proc_file}").read_text().splitlines()
                            if line.startswith(field)) / 1024)
        except (OSError, StopIteration):
            pass
    return out


def rss_each(pids: list[int]) -> list[float]:
    """RSS of each process (process_tree(): arca serve's parent, then its workers), MiB."""
    return _kib_field(pids, "status", "VmRSS:")


def pss_each(pids: list[int]) -> list[float]:
    """PSS of each process, MiB: its own pages plus its share of those it shares (the libraries every
    worker maps), so the sum is what the tree really holds, where the RSS sum counts shared pages once
    per process."""
    return _kib_field(pids, "smaps_rollup", "Pss:")


def rss_mib(pids: list[int]) -> float:
    return sum(rss_each(pids))


def sampled(pid: int, cmd: list[str], cwd: Path) -> tuple[dict, list[float]]:
    """timed(cmd), while a thread samples the RSS of pid's tree every 20 ms (the tree is listed once:
    a scan of /proc costs several ms of CPU, the transfer's own)."""
    samples: list[float] = []
    done = threading.Event()
    pids = process_tree(pid)

    def sample():
        while not done.is_set():
            samples.append(rss_mib(pids))
            done.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        return timed(cmd, cwd, clean_env(), pids), samples
    finally:
        done.set()
        thread.join()


def memory(name: str, arca: ArcaServer, token: str, work: Path, size: int) -> dict:
    """A `size`-byte PUT to a Maven path, streamed by curl from a sparse file under the work dir
    (deleted right after), then a GET of it to /dev/null; the tree's RSS before, during and 1 s after each."""
    pid = arca.proc.pid
    src = work / f"memory-{name}.bin"
    with open(src, "wb") as fh:
        fh.write(os.urandom(64))  # bytes of its own: the Arca servers share one blob store
        fh.truncate(size)
    mvn, art = arca.endpoint("bench", "maven", "mvn"), f"big-{name}"
    url = f"{mvn}com/acme/{art}/1.0/{art}-1.0.bin"
    curl = ["curl", "-sS", "--fail", "--user", f"aws:{token}"]
    each = rss_each(process_tree(pid))
    out = {"before": sum(each)}
    try:
        put, out["put"] = sampled(pid, curl + ["--request", "PUT", "--upload-file", str(src), url], work)
    finally:
        src.unlink()
    meta = (f"<metadata><groupId>com.acme</groupId><artifactId>{art}</artifactId><versioning><versions>"
            f"<version>1.0</version></versions></versioning></metadata>")  # publishes the version, as mvn deploy does
    httpx.put(f"{mvn}com/acme/{art}/maven-metadata.xml", content=meta, auth=("aws", token)).raise_for_status()
    time.sleep(1)
    out["after_put"] = rss_mib(process_tree(pid))
    get, out["get"] = sampled(pid, curl + ["--output", "/dev/null", url], work)
    time.sleep(1)
    tree = process_tree(pid)
    out["each_after"] = rss_each(tree)
    out["after_get"] = sum(out["each_after"])
    out["pss_after"] = sum(pss_each(tree))
    out["rates"] = (size / MB / put["seconds"], size / MB / get["seconds"])
    out["load"] = put["load"]
    print(f"  memory {name}: RSS {out['before']:.1f} -> PUT peak {max(out['put']):.1f} -> {out['after_put']:.0f}"
          f" -> GET peak {max(out['get']):.0f} -> {out['after_get']:.0f} MiB (before, per process: "
          f"{' + '.join(f'{x:.0f}' for x in each)})", flush=True)
    return out


def print_memory(results: dict[str, dict], size: int) -> None:
    print(f"\n| RSS of the serve tree (MiB), {size / 2**20:,.0f} MiB PUT + GET | before | PUT peak | after PUT "
          f"| GET peak | after GET | after GET, per process | PSS after GET | PUT / GET MB/s | load "
          f"| goal: < {RSS_GOAL_MIB} MiB, flat (peak <= before + {FLAT_MIB}) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, m in results.items():
        peak = max(m["put"] + m["get"])
        small = max(peak, m["after_put"], m["after_get"]) < RSS_GOAL_MIB
        flat = peak <= m["before"] + FLAT_MIB
        print(f"| {name} | {m['before']:.0f} | {max(m['put']):.0f} | {m['after_put']:.0f} | {max(m['get']):.0f} | "
              f"{m['after_get']:.0f} | {' + '.join(f'{x:.0f}' for x in m['each_after'])} | {m['pss_after']:.0f} | "
              f"{m['rates'][0]:,.0f} / {m['rates'][1]:,.0f} | {m['load']:.1f} | "
              f"< {RSS_GOAL_MIB} {'✔' if small else '✘'}, flat {'✔' if flat else '✘'} (+{peak - m['before']:.0f}) |")


# ---- the table ---------------------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    url: str
    pids: list[int]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    label: str
    conns: int
    targets: list[Target]
    goal: str            # e.g. ">= 0.70 x nginx"
    ref: str             # which target the goal compares with
    factor: float        # goal: arca / ref >= factor (for times: arca / ref <= factor)
    size: int = 0        # bytes per request: MB/s instead of req/s
    ref_value: float | None = None  # the reference's figure from another run, when it cannot run here
    runs: dict[str, list[dict]] = field(default_factory=dict)


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"aws:{token}".encode()).decode()}


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def print_table(rows: list[Row], arca_name: str) -> None:
    print("\n| workload | c | " + " | ".join(["server: median (CPU ms/req, load)"]) + " | Arca ÷ ref | goal |")
    print("|---|---|---|---|---|")
    for row in rows:
        cells = []
        value = {}
        for t in row.targets:
            runs = row.runs.get(t.name, [])
            if not runs:
                continue
            rate = median([r["rps"] for r in runs]) * (row.size / MB if row.size else 1)
            value[t.name] = rate
            cells.append(f"{t.name} {rate:,.0f}{' MB/s' if row.size else ''} ({median([r['cpu_ms'] for r in runs]):.2f}, "
                         f"{median([r['load'] for r in runs]):.1f})")
        ref = value.get(row.ref, row.ref_value)
        ratio = value.get(arca_name, float("nan")) / ref if ref else float("nan")
        met = "✔" if ratio >= row.factor else "✘"
        print(f"| {row.label} | {row.conns} | {' · '.join(cells)} | {ratio:.2f} vs {row.ref} | {row.goal} {met} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/arca-bench-serve"))
    ap.add_argument("--tools", type=Path, default=Path("/tmp/arca-bench-tools"))
    ap.add_argument("--only", default="", help="run only rows whose label contains this text")
    ap.add_argument("--uploads", default=UPLOADS,
                    help="how many wheels twine uploads, packages npm publishes and Maven files curl PUTs per round "
                         f"(default: the issue's {UPLOADS})")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout's `arca` executable (e.g. core's): a column 'base' of it, same data, "
                         "default workers")
    ap.add_argument("--memory-mib", type=int, default=1024, help="size of the file the memory row PUTs and GETs")
    args = ap.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ncpu = os.cpu_count() or 1
    print(f"# data set, {ncpu} CPUs, load {load_average():.1f}", flush=True)
    d = make_data(work)
    started: list = []
    try:
        arca1 = start_server(work / "arca")
        started.append(arca1)
        token = fill_arca(arca1, d)
        arcas = [("arca-1w", arca1)]
        # N workers (the default, one per CPU) and 2 (the Docker image's default, where a keep-alive
        # request took 44 ms): c1 and c32 for each, whatever this machine's CPU count
        for n in sorted({2, ncpu} - {1}):
            extra = ArcaServer(root=work / f"arca-{n}w", env=arca1.env, access_key=arca1.access_key)
            (work / f"arca-{n}w").mkdir()
            extra.start(workers=n)
            started.append(extra)
            arcas.append((f"arca-{n}w", extra))
        arcan = dict(arcas).get(f"arca-{ncpu}w", arca1)
        nginx = Nginx(work / "nginx", server_block(STATIC_SERVER.format(root=d.static)), workers=ncpu)
        started.append(nginx)
        fill_static(arca1, d, token, nginx.url)
        static = start_static(d.static, work / "http-server.log")
        started.append(static)
        pypiserver = start_pypiserver(d.files, work / "pypiserver.log")
        started.append(pypiserver)
        devpi = Devpi(args.tools, work / "devpi")
        started.append(devpi)
        devpi.upload(d.small_wheels + d.fifty + [d.big_wheel])
        verdaccio = Verdaccio(work / "verdaccio")
        started.append(verdaccio)
        publish_all(verdaccio.url + "/", verdaccio.token, bodies_for("bench-doc", 20))
        print(f"# servers up, load {load_average():.1f}", flush=True)

        auth = basic(token)
        if args.baseline:
            base = ArcaServer(root=work / "arca-base", env=arca1.env, access_key=arca1.access_key,
                              exe=str(args.baseline))
            (work / "arca-base").mkdir()
            base.start(workers=ncpu)
            started.append(base)
            arcas.append((f"base-{ncpu}w", base))
        default = f"arca-{ncpu}w"

        def arca_targets(path: str, headers: dict | None = None) -> list[Target]:
            return [Target(n, a.url + path, process_tree(a.proc.pid), {**auth, **(headers or {})}) for n, a in arcas]

        def peer(name: str, proc, url: str, headers: dict | None = None) -> Target:
            return Target(name, url, process_tree(proc.pid), headers or {})

        small_wheel = d.small_wheels[0].name
        big_wheel = d.big_wheel.name
        dev_small_url = devpi.file_url("small-project", small_wheel)
        dev_big_url = devpi.file_url("big-wheel", big_wheel)
        np, ng = nginx.proc, nginx.url
        rows = [
            Row("50 MB wheel download", 1, arca_targets(f"/bench/pypi/py/simple/big-wheel/{big_wheel}")
                + [peer("nginx", np, f"{ng}/pypi/files/{big_wheel}"), peer("devpi", devpi.proc, dev_big_url)],
                ">= 0.70 x nginx", "nginx", 0.70, size=d.big_wheel.stat().st_size),
            Row("50 MB npm tarball download", 1, arca_targets("/bench/npm/js/big-tarball/-/big-tarball-1.0.0.tgz")
                + [peer("nginx", np, f"{ng}/npm/big-tarball/-/big-tarball-1.0.0.tgz")],
                ">= 0.70 x nginx", "nginx", 0.70, size=len(d.big_tgz)),
            Row("50 MB Maven jar download", 1, arca_targets(f"/bench/maven/mvn/{GROUP}/app-1.0.0-big.jar")
                + [peer("nginx", np, f"{ng}/maven/{GROUP}/app-1.0.0-big.jar")],
                ">= 0.70 x nginx", "nginx", 0.70, size=BIG),
        ]
        for conns in (1, 32):
            rows += [
                Row("small wheel GET", conns, arca_targets(f"/bench/pypi/py/simple/small-project/{small_wheel}")
                    + [peer("http.server", static.proc, f"{static.url}/pypi/files/{small_wheel}"),
                       peer("devpi", devpi.proc, dev_small_url), peer("nginx", np, f"{ng}/pypi/files/{small_wheel}")],
                    ">= 2 x http.server", "http.server", 2.0),
                Row("small npm tarball GET", conns, arca_targets("/bench/npm/js/bench-doc/-/bench-doc-0.0.0.tgz")
                    + [peer("http.server", static.proc, f"{static.url}/npm/bench-doc/-/bench-doc-0.0.0.tgz"),
                       peer("verdaccio-anon", verdaccio.proc, f"{verdaccio.url}/bench-doc/-/bench-doc-0.0.0.tgz"),
                       peer("nginx", np, f"{ng}/npm/bench-doc/-/bench-doc-0.0.0.tgz")],
                    ">= 2 x http.server", "http.server", 2.0),
                Row("Maven jar (64 KiB) GET", conns, arca_targets(f"/bench/maven/mvn/{GROUP}/app-1.0.0.jar")
                    + [peer("http.server", static.proc, f"{static.url}/maven/{GROUP}/app-1.0.0.jar"),
                       peer("nginx", np, f"{ng}/maven/{GROUP}/app-1.0.0.jar")],
                    ">= 2 x http.server", "http.server", 2.0),
                Row("PyPI project page, 20 files", conns, arca_targets("/bench/pypi/py/simple/small-project/",
                                                                       {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip"})
                    + [peer("devpi", devpi.proc, devpi.index + "+simple/small-project/", {"Accept-Encoding": "gzip"}),
                       peer("pypiserver", pypiserver.proc, pypiserver.url + "/simple/small-project/")],
                    ">= 2 x devpi", "devpi", 2.0),
                Row("PyPI /simple/ root", conns, arca_targets("/bench/pypi/py/simple/",
                                                              {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip"})
                    + [peer("devpi", devpi.proc, devpi.index + "+simple/", {"Accept-Encoding": "gzip"}),
                       peer("pypiserver", pypiserver.proc, pypiserver.url + "/simple/")],
                    ">= 2 x devpi", "devpi", 2.0),
                Row("npm packument, 20 versions", conns, arca_targets("/bench/npm/js/bench-doc",
                                                                      {"Accept": CORGI, "Accept-Encoding": "gzip"})
                    + [peer("verdaccio-anon", verdaccio.proc, f"{verdaccio.url}/bench-doc",
                            {"Accept": CORGI, "Accept-Encoding": "gzip"}),
                       peer("verdaccio-token", verdaccio.proc, f"{verdaccio.url}/bench-doc",
                            {"Accept": CORGI, "Accept-Encoding": "gzip", "Authorization": f"Bearer {verdaccio.token}"})],
                    ">= verdaccio-anon", "verdaccio-anon", 1.0),
            ]
        rows.append(Row("PyPI page, 2,000 files", 32, arca_targets("/bench/pypi/py/simple/huge-project/",
                                                                    {"Accept": PIP_ACCEPT, "Accept-Encoding": "gzip"}),
                        ">= 20 x devpi (devpi: 24 req/s at 1,111 files in the issue's run)", "devpi", 20.0,
                        ref_value=24.0))
        rows = [r for r in rows if args.only in r.label]

        # pip download / npm install, cold
        names = [f"bench-pkg-{i}" for i in range(50)]
        pip_index = {default: f"http://aws:{token}@{arcan.hostport}/bench/pypi/py/simple/",
                     "nginx": f"{ng}/pypi/simple/", "devpi": devpi.index + "+simple/"}
        pip_pids = {default: process_tree(arcan.proc.pid), "nginx": process_tree(np.pid),
                    "devpi": process_tree(devpi.proc.pid)}
        npm_reg = {default: (arcan.endpoint("bench", "npm", "js"), token), "nginx": (f"{ng}/npm/", "none")}
        installs: dict[str, list[dict]] = {}

        counts = [int(n) for n in args.uploads.split(",")]
        uploaders: list[Uploads] = []
        if args.only in UPLOAD_LABEL:
            for name, a in arcas:
                repos = {fmt: f"up-{name}-{fmt}" for fmt in ("pypi", "npm", "maven")}
                for repo in repos.values():
                    a.create_repo("bench", repo)
                uploaders.append(Uploads(name, process_tree(a.proc.pid),
                                         pypi=(a.endpoint("bench", "pypi", repos["pypi"]), "aws", token),
                                         npm=(a.endpoint("bench", "npm", repos["npm"]), token),
                                         maven=(a.endpoint("bench", "maven", repos["maven"]), token)))
            # Two pypiservers take the wheels: one holding the data set the Arca servers hold (a copy
            # of its files: pypiserver lists its directory on every upload, so its cost grows with
            # what it holds, while Arca's does not), the goal's peer; and one that starts empty.
            shutil.copytree(d.files, work / "pypiserver-uploads")
            (work / "pypiserver-empty").mkdir()
            for peer_name, peer_dir in (("pypiserver", "pypiserver-uploads"), ("pypiserver-empty", "pypiserver-empty")):
                up = start_pypiserver(work / peer_dir, work / f"{peer_dir}.log")
                started.append(up)
                uploaders.append(Uploads(peer_name, process_tree(up.proc.pid), pypi=(up.url + "/", "bench", "bench")))
            uploaders.append(Uploads("verdaccio", process_tree(verdaccio.proc.pid),
                                     npm=(verdaccio.url + "/", verdaccio.token)))

        for rnd in range(args.rounds):
            print(f"# round {rnd + 1}/{args.rounds}, load {load_average():.1f}", flush=True)
            for row in rows:  # warm every cache (and the 2,000-file page's first rendering): the last round's
                for t in row.targets:  # uploads emptied them
                    httpx.get(t.url, headers=t.headers, timeout=300)
            for row in rows:
                for t in row.targets:
                    try:
                        r = wrk(t.url, row.conns, args.duration, t.headers, t.pids)
                    except RuntimeError as exc:  # one bad cell does not lose the run
                        print(f"  {row.label} c{row.conns} {t.name}: FAILED {str(exc)[:300]}", flush=True)
                        continue
                    row.runs.setdefault(t.name, []).append(r)
                    print(f"  {row.label} c{row.conns} {t.name}: {r['rps']:.1f} req/s, {r['cpu_ms']:.2f} CPU ms/req, "
                          f"{r['latency_ms']:.2f} ms, load {r['load']:.1f} {r['errors']}", flush=True)
            if not args.only:
                for who, index in pip_index.items():
                    dest = work / f"pip-{who}-{rnd}"
                    r = timed([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-q", "-d",
                               str(dest), "--index-url", index, *names], work, clean_env(), pip_pids[who])
                    installs.setdefault(f"pip download 50 · {who}", []).append(r)
                    print(f"  pip download {who}: {r['seconds']:.2f} s", flush=True)
                for who, (url, tok) in npm_reg.items():
                    proj = work / f"npm-{who}-{rnd}"
                    write_consumer(proj, {f"dep-{i}": "1.0.0" for i in range(30)})
                    write_npmrc(proj / ".npmrc", url, tok)
                    env = clean_env(npm_config_userconfig=str(proj / ".npmrc"), npm_config_cache=str(proj / "cache"),
                                    npm_config_update_notifier="false")
                    r = timed(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], proj, env,
                              pip_pids[default] if who == default else process_tree(np.pid))
                    installs.setdefault(f"npm install 30 · {who}", []).append(r)
                    print(f"  npm install {who}: {r['seconds']:.2f} s", flush=True)
            if uploaders:  # last: their writes empty Arca's caches (the next round warms them again)
                upload_round(uploaders, work, rnd, counts)

        size = args.memory_mib * 2**20  # RSS after all the load
        mem = {name: memory(name, a, token, work, size) for name, a in arcas} if args.only in MEMORY_LABEL else {}

        print(f"\n# medians of {args.rounds} rounds x {args.duration:.0f} s; wrk -t1; Arca with a token "
              f"(Basic aws:TOKEN), peers anonymous unless named; (server CPU ms per request, 1-min load average)")
        if rows:
            print_table(rows, default)
        if installs:
            print("\n| command (cold) | median s | server CPU ms | load |")
            print("|---|---|---|---|")
            for k, runs in installs.items():
                print(f"| {k} | {median([r['seconds'] for r in runs]):.2f} | {median([r['cpu_ms'] for r in runs]):.0f} | "
                      f"{median([r['load'] for r in runs]):.1f} |")
            for tool in ("pip download 50", "npm install 30"):
                a, n = installs.get(f"{tool} · {default}"), installs.get(f"{tool} · nginx")
                if a and n:
                    ratio = median([r['seconds'] for r in a]) / median([r['seconds'] for r in n])
                    print(f"{tool}: Arca {ratio:.2f}x nginx static (goal <= 1.2x) {'✔' if ratio <= 1.2 else '✘'}")
        if uploaders:
            print_uploads(uploaders, counts, default)
        if mem:
            print_memory(mem, size)
        latency = [(row, t) for row in rows if row.conns == 1 and row.size == 0 for t in row.targets
                   if t.name.startswith("arca")]
        if latency:
            print("\n| keep-alive c1 latency (ms, median) | " + " | ".join(n for n, _ in arcas) + " |")
            print("|---|" + "---|" * len(arcas))
            for row in [r for r in rows if r.conns == 1 and r.size == 0]:
                print(f"| {row.label} | " + " | ".join(f"{median([x['latency_ms'] for x in row.runs.get(n, [])]):.2f}"
                                                     for n, _ in arcas) + " |")
    finally:
        for s in reversed(started):
            try:
                s.stop()
            except Exception as exc:  # stop the others whatever happens
                print(f"stopping {s}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
