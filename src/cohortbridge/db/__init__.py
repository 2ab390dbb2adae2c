"""Storage foundation shared by both sides: engines, portable types, dialect helpers."""
