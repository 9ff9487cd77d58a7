"""Reading the warehouse for people: per-code series, charts, and the movers report."""
