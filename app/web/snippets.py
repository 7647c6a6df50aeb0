"""Text the console shows for copying: a version's install/dependency line and per-client
connection instructions for a repository. Plain text; the templates escape it."""

from __future__ import annotations

from urllib.parse import urlsplit

TOKEN_VAR = "$CODEARTIFACT_AUTH_TOKEN"
CLIENTS = {
    "mvn": "Maven (mvn)",
    "pip": "pip / uv",
    "twine": "twine",
    "npm": "npm",
    "curl": "curl",
}
CLIENT_FORMAT = {"mvn": "maven", "pip": "pypi", "twine": "pypi", "npm": "npm", "curl": None}


def endpoint(base: str, domain: str, fmt: str, repo: str) -> str:
    return f"{base.rstrip('/')}/{domain}/{fmt}/{repo}/"


def _with_auth(url: str, secret: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://aws:{secret}@{parts.netloc}{parts.path}"


def install_snippets(fmt: str, namespace: str, name: str, version: str) -> list[tuple[str, str]]:
    """[(label, text)] for depending on / installing this exact version."""
    if fmt == "maven":
        return [
            ("Maven pom.xml", "<dependency>\n"
                              f"  <groupId>{namespace}</groupId>\n"
                              f"  <artifactId>{name}</artifactId>\n"
                              f"  <version>{version}</version>\n"
                              "</dependency>"),
            ("Gradle (Kotlin DSL)", f'implementation("{namespace}:{name}:{version}")'),
        ]
    if fmt == "pypi":
        return [("pip", f"pip install {name}=={version}"), ("uv", f"uv pip install {name}=={version}"),
                ("requirements.txt", f"{name}=={version}")]
    if fmt == "npm":
        full = f"@{namespace}/{name}" if namespace else name
        return [("npm", f"npm install {full}@{version}"),
                ("package.json", f'"{full}": "{version}"')]
    return []


def connection(client: str, base: str, domain: str, repo: str, token: str | None) -> list[tuple[str, str]]:
    """[(title, text)] steps for one client, filled in with the endpoint (and a token when given)."""
    secret = token or TOKEN_VAR
    login = [("Get a token (valid 12 hours)",
              f"export CODEARTIFACT_AUTH_TOKEN=$(arca get-authorization-token --domain {domain} "
              "--query authorizationToken --output text)")] if token is None else [
        ("Your token (shown once; valid 12 hours)", f"export CODEARTIFACT_AUTH_TOKEN={token}")]
    if client == "mvn":
        url = endpoint(base, domain, "maven", repo)
        sid = f"{domain}-{repo}"
        settings = ("<settings>\n  <servers>\n    <server>\n"
                    f"      <id>{sid}</id>\n      <username>aws</username>\n"
                    "      <password>${env.CODEARTIFACT_AUTH_TOKEN}</password>\n"
                    "    </server>\n  </servers>\n  <profiles>\n    <profile>\n"
                    f"      <id>{sid}</id>\n      <repositories>\n        <repository>\n"
                    f"          <id>{sid}</id>\n          <url>{url}</url>\n"
                    "        </repository>\n      </repositories>\n    </profile>\n  </profiles>\n"
                    f"  <activeProfiles>\n    <activeProfile>{sid}</activeProfile>\n  </activeProfiles>\n"
                    "</settings>")
        pom = ("<distributionManagement>\n  <repository>\n"
               f"    <id>{sid}</id>\n    <name>{sid}</name>\n    <url>{url}</url>\n"
               "  </repository>\n</distributionManagement>")
        return login + [("~/.m2/settings.xml", settings), ("pom.xml (to publish with mvn deploy)", pom),
                        ("Publish", "mvn deploy")]
    if client == "pip":
        url = endpoint(base, domain, "pypi", repo)
        index = _with_auth(url, secret) + "simple/"
        return login + [("pip", f"pip install --index-url {index} PACKAGE"),
                        ("uv", f"uv pip install --index-url {index} PACKAGE"),
                        ("pip.conf ([global] section)", f"[global]\nindex-url = {index}")]
    if client == "twine":
        url = endpoint(base, domain, "pypi", repo)
        pypirc = (f"[distutils]\nindex-servers =\n    {domain}-{repo}\n\n[{domain}-{repo}]\n"
                  f"repository = {url}\nusername = aws\npassword = {secret}")
        return login + [("~/.pypirc", pypirc), ("Publish", f"twine upload --repository {domain}-{repo} dist/*")]
    if client == "npm":
        url = endpoint(base, domain, "npm", repo)
        parts = urlsplit(url)
        npmrc = f"registry={url}\n//{parts.netloc}{parts.path}:_authToken={secret}"
        return login + [("~/.npmrc (or the project's .npmrc)", npmrc),
                        ("For one scope only", f"@SCOPE:registry={url}\n//{parts.netloc}{parts.path}:_authToken={secret}"),
                        ("Install / publish", "npm install PACKAGE\nnpm publish")]
    if client == "curl":
        maven = endpoint(base, domain, "maven", repo)
        return login + [
            ("Upload a Maven file (the version stays Unfinished until published)",
             f'curl --user "aws:{secret}" --upload-file app-1.0.0.jar \\\n  {maven}com/acme/app/1.0.0/app-1.0.0.jar'),
            ("Download", f'curl --user "aws:{secret}" -O \\\n  {maven}com/acme/app/1.0.0/app-1.0.0.jar'),
            ("PyPI simple index", f'curl --user "aws:{secret}" {endpoint(base, domain, "pypi", repo)}simple/'),
            ("npm packument", f'curl -H "Authorization: Bearer {secret}" {endpoint(base, domain, "npm", repo)}PACKAGE'),
        ]
    raise KeyError(client)
