"""All SQL of segments: their definitions, the audience a definition selects, their exports."""
