"""A simulated OpenD gateway: the real wire protocol over TCP, serving deterministic demo data.

It lets the product run, be tested and be benchmarked without a brokerage login, and its fault knobs
reproduce what a real gateway does to a crawler (rate rejections, drops, slow or malformed replies).
"""
