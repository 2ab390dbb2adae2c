"""Background work: the in-process runner of the embedded default (ARCHITECTURE.md, "Jobs")."""
