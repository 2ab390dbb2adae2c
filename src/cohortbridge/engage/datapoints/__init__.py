"""The data-point ledger: billable writes per workspace, UTC day and source (spec braze §6)."""
