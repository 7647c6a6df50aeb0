"""`arca login --tool pip|twine|npm|maven`: fetch a token and configure a client to use a repository.

Like `aws codeartifact login` (GetAuthorizationToken + GetRepositoryEndpoint, then the client's own
configuration file), with two additions users ask for: `--extra-index-url` so pip keeps the public
index next to the private one, and `--tool maven`, which prints (or with `--settings-file` merges
into a settings.xml) the server, mirror and repository entries; Maven reads the token from
`$CODEARTIFACT_AUTH_TOKEN`, as CodeArtifact's documentation has it.

Files are written atomically (temp file + rename) with mode 0600, since they hold the token.
`--dry-run` prints what would be written and changes nothing.

From a CI job, `--oidc-token-file FILE --role-arn ARN` first exchanges the job's OIDC token for
temporary credentials (sts:AssumeRoleWithWebIdentity, unsigned: the token is the credential) and
uses those: nothing long-lived is needed (docs/identity.md, trusted publishing).
"""

from __future__ import annotations

import argparse
import configparser
import io
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from app.cli.ops import make_client
from app.config import client_settings

TOOLS = {"pip": "pypi", "twine": "pypi", "npm": "npm", "maven": "maven"}
EXIT_USAGE, EXIT_CONFIG, EXIT_SERVICE = 2, 253, 254


# ---- file locations --------------------------------------------------------------------------------

def pip_config_path(env: Mapping[str, str]) -> Path:
    """The file pip reads: $PIP_CONFIG_FILE when set (and not os.devnull), else the user file."""
    explicit = env.get("PIP_CONFIG_FILE")
    if explicit and explicit != os.devnull:
        return Path(explicit)
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "pip" / "pip.conf"


def npmrc_path(env: Mapping[str, str]) -> Path:
    for key in ("NPM_CONFIG_USERCONFIG", "npm_config_userconfig"):
        if env.get(key):
            return Path(env[key])
    return Path(env.get("HOME") or Path.home()) / ".npmrc"


def pypirc_path(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home()) / ".pypirc"


def write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _ini(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # keep keys as written
    cp.read_string(text)
    return cp


def _ini_text(cp: configparser.ConfigParser) -> str:
    buf = io.StringIO()
    cp.write(buf)
    return buf.getvalue()


# ---- per-tool configuration (pure: old text in, new text out) -------------------------------------

def with_credentials(endpoint: str, token: str) -> str:
    parts = urlsplit(endpoint)
    return urlunsplit((parts.scheme, f"aws:{token}@{parts.netloc}", parts.path, parts.query, parts.fragment))


def pip_config(old: str, endpoint: str, token: str, extra_index_urls: list[str]) -> str:
    cp = _ini(old)
    if not cp.has_section("global"):
        cp.add_section("global")
    cp.set("global", "index-url", with_credentials(endpoint, token) + "simple/")
    if extra_index_urls:
        cp.set("global", "extra-index-url", "\n" + "\n".join(extra_index_urls))
    return _ini_text(cp)


def pypirc_config(old: str, endpoint: str, token: str, name: str = "codeartifact") -> str:
    cp = _ini(old)
    if not cp.has_section("distutils"):
        cp.add_section("distutils")
    servers = (cp.get("distutils", "index-servers", fallback="") or "").split()
    if name not in servers:
        servers.append(name)
    cp.set("distutils", "index-servers", "\n" + "\n".join(servers))
    if not cp.has_section(name):
        cp.add_section(name)
    cp.set(name, "repository", endpoint)
    cp.set(name, "username", "aws")
    cp.set(name, "password", token)
    return _ini_text(cp)


def npmrc_config(old: str, endpoint: str, token: str, namespace: str | None) -> str:
    registry_key = f"@{namespace.lstrip('@')}:registry" if namespace else "registry"
    parts = urlsplit(endpoint)
    auth_key = f"//{parts.netloc}{parts.path}:_authToken"
    values = {registry_key: endpoint, auth_key: token}
    lines, seen = [], set()
    for line in old.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in values:
            if key not in seen:
                lines.append(f"{key}={values[key]}")
                seen.add(key)
            continue
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    return "\n".join(lines) + "\n"


def maven_snippet(endpoint: str, server_id: str) -> dict[str, str]:
    """The settings.xml entries (as XML text) for a repository."""
    return {
        "server": (f"<server><id>{server_id}</id><username>aws</username>"
                   "<password>${env.CODEARTIFACT_AUTH_TOKEN}</password></server>"),
        "mirror": (f"<mirror><id>{server_id}</id><name>{server_id}</name><mirrorOf>*</mirrorOf>"
                   f"<url>{endpoint}</url></mirror>"),
        "profile": (f"<profile><id>{server_id}</id><repositories><repository><id>{server_id}</id>"
                    f"<url>{endpoint}</url><releases><enabled>true</enabled></releases>"
                    "<snapshots><enabled>true</enabled></snapshots></repository></repositories></profile>"),
        "activeProfile": f"<activeProfile>{server_id}</activeProfile>",
    }


def maven_settings(old: str, endpoint: str, server_id: str) -> str:
    """Merge the entries into a settings.xml, replacing entries with the same id."""
    ns = ""
    if old.strip():
        root = ET.fromstring(old)
        if root.tag.startswith("{"):
            ns = root.tag[1:].split("}")[0]
            ET.register_namespace("", ns)
    else:
        root = ET.Element("settings")

    def q(tag: str) -> str:
        return f"{{{ns}}}{tag}" if ns else tag

    def container(tag: str) -> ET.Element:
        found = root.find(q(tag))
        if found is None:
            found = ET.SubElement(root, q(tag))
        return found

    def parse(snippet: str) -> ET.Element:
        el = ET.fromstring(snippet)
        if ns:
            for e in el.iter():
                e.tag = q(e.tag)
        return el

    snippets = maven_snippet(endpoint, server_id)
    for parent, child in (("servers", "server"), ("mirrors", "mirror"), ("profiles", "profile")):
        box = container(parent)
        for old_el in list(box.findall(q(child))):
            if (old_el.findtext(q("id")) or "").strip() == server_id:
                box.remove(old_el)
        box.append(parse(snippets[child]))
    active = container("activeProfiles")
    if server_id not in [(e.text or "").strip() for e in active.findall(q("activeProfile"))]:
        active.append(parse(snippets["activeProfile"]))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


# ---- the command -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="arca login",
        description="Get an authorization token and configure pip, twine, npm or Maven to use an Arca repository.")
    p.add_argument("--tool", required=True, choices=sorted(TOOLS))
    p.add_argument("--domain", required=True)
    p.add_argument("--domain-owner")
    p.add_argument("--repository", required=True)
    p.add_argument("--duration-seconds", type=int, help="token lifetime, 900-43200 (default 43200)")
    p.add_argument("--namespace", help="npm: configure only this scope (@scope:registry)")
    p.add_argument("--extra-index-url", action="append", default=[], metavar="URL",
                   help="pip: also keep this index, e.g. https://pypi.org/simple/ (repeatable)")
    p.add_argument("--settings-file", type=Path, metavar="PATH",
                   help="maven: merge the entries into this settings.xml instead of printing them")
    p.add_argument("--server-id", default="codeartifact", help="maven: the server/mirror/repository id")
    p.add_argument("--dry-run", action="store_true", help="print what would be written; change nothing")
    p.add_argument("--oidc-token-file", type=Path, metavar="FILE",
                   help="a CI job's OIDC token (JWT): exchange it for temporary credentials of --role-arn first")
    p.add_argument("--role-arn", help="with --oidc-token-file: the role to assume")
    p.add_argument("--role-session-name", default="arca-login", help="with --oidc-token-file (default arca-login)")
    p.add_argument("--endpoint-url", default=None, help="Arca server URL (default: as the AWS CLI finds it, then $ARCA_ENDPOINT_URL)")
    p.add_argument("--region", default=None)
    p.add_argument("--profile", default=None)
    return p


def fetch(args) -> tuple[str, str, datetime]:
    """(token, repository endpoint, expiration) from the server."""
    client_cfg = client_settings(args.endpoint_url, args.region, profile=args.profile)
    credentials = assume_role(args, client_cfg) if args.oidc_token_file else None
    client = make_client(client_cfg.endpoint_url, client_cfg.region, args.profile, credentials=credentials)
    owner = {"domainOwner": args.domain_owner} if args.domain_owner else {}
    kwargs = dict(domain=args.domain, **owner)
    if args.duration_seconds is not None:
        kwargs["durationSeconds"] = args.duration_seconds
    tok = client.get_authorization_token(**kwargs)
    ep = client.get_repository_endpoint(domain=args.domain, repository=args.repository, format=TOOLS[args.tool],
                                        **owner)
    return tok["authorizationToken"], ep["repositoryEndpoint"], tok["expiration"]


def assume_role(args, client_cfg) -> dict:
    """Temporary credentials for --role-arn from the OIDC token in --oidc-token-file."""
    from botocore import UNSIGNED
    from botocore.config import Config
    import boto3

    token = args.oidc_token_file.read_text().strip()
    sts = boto3.client("sts", endpoint_url=client_cfg.endpoint_url, region_name=client_cfg.region,
                       config=Config(signature_version=UNSIGNED, retries={"mode": "standard", "total_max_attempts": 2}))
    return sts.assume_role_with_web_identity(RoleArn=args.role_arn, RoleSessionName=args.role_session_name,
                                             WebIdentityToken=token)["Credentials"]


def plan(args, token: str, endpoint: str, env: Mapping[str, str]) -> tuple[Path | None, str]:
    """(file to write or None to print, its new content)."""
    if args.tool == "pip":
        path = pip_config_path(env)
        return path, pip_config(_read(path), endpoint, token, args.extra_index_url)
    if args.tool == "twine":
        path = pypirc_path(env)
        return path, pypirc_config(_read(path), endpoint, token)
    if args.tool == "npm":
        path = npmrc_path(env)
        return path, npmrc_config(_read(path), endpoint, token, args.namespace)
    if args.settings_file:
        return args.settings_file, maven_settings(_read(args.settings_file), endpoint, args.server_id)
    return None, maven_settings("", endpoint, args.server_id)


def _expiry_text(expiration: datetime) -> str:
    if not isinstance(expiration, datetime):
        return str(expiration)
    left = expiration - datetime.now(timezone.utc if expiration.tzinfo else None)
    hours = max(0, round(left.total_seconds() / 3600))
    return f"Login expires in {hours} hours at {expiration}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tool != "pip" and args.extra_index_url:
        print("arca login: --extra-index-url applies to --tool pip only", file=sys.stderr)
        return EXIT_USAGE
    if args.tool != "npm" and args.namespace:
        print("arca login: --namespace applies to --tool npm only", file=sys.stderr)
        return EXIT_USAGE
    if args.tool != "maven" and args.settings_file:
        print("arca login: --settings-file applies to --tool maven only", file=sys.stderr)
        return EXIT_USAGE
    if bool(args.oidc_token_file) != bool(args.role_arn):
        print("arca login: --oidc-token-file and --role-arn go together", file=sys.stderr)
        return EXIT_USAGE
    if args.oidc_token_file and not args.oidc_token_file.is_file():
        print(f"arca login: --oidc-token-file {args.oidc_token_file}: no such file", file=sys.stderr)
        return EXIT_CONFIG
    try:
        token, endpoint, expiration = fetch(args)
    except Exception as exc:  # botocore ClientError, NoCredentialsError, connection errors
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            print(f"arca login: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        if isinstance(exc, ClientError):
            print(f"arca login: {exc}", file=sys.stderr)
            return EXIT_SERVICE
        print(f"arca login: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_SERVICE
    path, text = plan(args, token, endpoint, client_settings().environ)
    if path is None or args.dry_run:
        if path is not None:
            print(f"# would write {path} (mode 0600):")
        elif args.tool == "maven":
            print("<!-- settings.xml entries; Maven reads the token from $CODEARTIFACT_AUTH_TOKEN:\n"
                  f"     export CODEARTIFACT_AUTH_TOKEN=$(arca get-authorization-token --domain {args.domain} "
                  "--query authorizationToken --output text) -->")
        print(text, end="")
        return 0
    write_private(path, text)
    print(f"Successfully configured {args.tool} to use Arca repository {endpoint} (wrote {path})")
    if args.tool == "maven":
        print("Maven reads the token from $CODEARTIFACT_AUTH_TOKEN: export CODEARTIFACT_AUTH_TOKEN=$(arca "
              f"get-authorization-token --domain {args.domain} --query authorizationToken --output text)")
    print(_expiry_text(expiration))
    return 0
