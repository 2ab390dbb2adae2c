"""Partner cohorts imported through /partners/{partner}/cohorts[/users] (spec braze §1)."""
