"""The relay's HTTP layer."""
