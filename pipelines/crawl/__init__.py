"""Crawling short interest from OpenD into the warehouse: watchlist, shared rate limiter, loads, CLI.

Submodules are imported where used (`pipelines.crawl.crawler`, `pipelines.crawl.watchlist`, ...) so
`shortinterest status` does not pay for the client, and the watchlist can be validated on its own.
"""
