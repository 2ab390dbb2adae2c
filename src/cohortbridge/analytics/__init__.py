"""analytics: the Amplitude-compatible side. Never imports cohortbridge.engage."""
