"""Pure rules of segments: the filter vocabulary, its validation and its description."""
