"""cohortbridge: a self-hosted implementation of the Braze ⇄ Amplitude integration."""

__version__ = "0.1.0"
