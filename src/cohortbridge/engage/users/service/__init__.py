"""Orchestration of the /users/* operations: fetch → logic → persist. Never commits."""
