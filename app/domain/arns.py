"""ARN builders (CodeArtifact's resource ARNs)."""


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def domain_arn(region: str, account: str, domain: str) -> str:
    return f"arn:aws:codeartifact:{region}:{account}:domain/{domain}"


def repository_arn(region: str, account: str, domain: str, repository: str) -> str:
    return f"arn:aws:codeartifact:{region}:{account}:repository/{domain}/{repository}"


def package_arn(region: str, account: str, domain: str, repository: str, fmt: str, namespace: str, name: str) -> str:
    return f"arn:aws:codeartifact:{region}:{account}:package/{domain}/{repository}/{fmt}/{namespace}/{name}"


def group_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:group/{name}"


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def assumed_role_arn(account: str, role: str, session: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def oidc_provider_arn(account: str, url: str) -> str:
    """IAM names a provider by its URL without the scheme: token.actions.githubusercontent.com."""
    return f"arn:aws:iam::{account}:oidc-provider/{provider_host(url)}"


def provider_host(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")
