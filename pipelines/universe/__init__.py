"""The universe: the watchlist resolved from its sources (Futu watchlist groups, plates, whole markets), with names."""
