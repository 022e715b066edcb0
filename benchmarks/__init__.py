"""Side-by-side benchmarks of fw against vectorbt and backtrader (``python -m benchmarks.run``).

Each workload does the same work through fw and the peers in one process, checks that they agree
on final equity, and reports best-of-N warm timings and fw-vs-peer ratios. See ``README.md``.
"""
