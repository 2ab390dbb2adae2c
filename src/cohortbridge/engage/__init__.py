"""engage: the Braze-compatible side. Never imports cohortbridge.analytics."""
