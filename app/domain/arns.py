"""ARN builders (CodeArtifact's resource ARNs)."""


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def domain_arn(region: str, account: str, domain: str) -> str:
    return f"arn:aws:codeartifact:{region}:{account}:domain/{domain}"


def repository_arn(region: str, account: str, domain: str, repository: str) -> str:
    return f"arn:aws:codeartifact:{region}:{account}:repository/{domain}/{repository}"


def package_arn(region: str, account: str, domain: str, repository: str, fmt: str, namespace: str, name: str) -> str:
    return f"arn:aws:codeartifact:{region}:{account}:package/{domain}/{repository}/{fmt}/{namespace}/{name}"
