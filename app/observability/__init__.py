"""Request context, request logs, metrics, the audit trail and package events."""
