"""Segments: definitions (create, update, archive, read), their audience, their exports."""
