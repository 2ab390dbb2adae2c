"""Workspaces (formerly app groups), their apps and REST API keys."""
