"""Pure rules of user profiles: identifiers, times, attribute operations, merges. No I/O."""
