"""Pure rules of cohorts: the definition vocabulary and its validation."""
