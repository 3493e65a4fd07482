"""The open115 benchmark (scripts/bench)."""
