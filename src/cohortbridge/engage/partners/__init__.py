"""Technology partners (Amplitude, …) and the keys they and the workspaces hold (spec braze §1)."""
