"""Arca: a self-hosted package repository with the AWS CodeArtifact workflow."""

__version__ = "0.1.0"
