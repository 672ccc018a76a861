"""Configuration: two-phase loading (raw TOML validated strictly, then compiled into runtime objects)."""
