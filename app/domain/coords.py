"""Package coordinates: the (format, namespace, name) that identifies a package in a repository."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Coordinates:
    format: str
    namespace: str  # '' when none (npm: the scope without '@'; Maven: the groupId)
    name: str  # PyPI: the PEP 503 normal form

    def label(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name
