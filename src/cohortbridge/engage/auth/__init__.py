"""REST API key authentication and permissions (spec braze §3.1)."""
