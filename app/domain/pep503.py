"""PEP 503 name normalisation."""

import re

_RUN = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    return _RUN.sub("-", name).lower()
