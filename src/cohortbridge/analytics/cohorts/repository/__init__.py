"""All SQL of cohorts: definitions, the audience a definition selects, membership and changes."""
