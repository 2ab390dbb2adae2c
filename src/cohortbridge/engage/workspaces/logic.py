"""Pure rules of workspaces."""

DEFAULT_WORKSPACE = "Default Workspace"
