"""Makes the source tree importable when pytest runs from the repository root."""
