"""Helpers of `benchmarks.bench_latency` (`make bench-latency`, `make profile-server`).

- :mod:`benchmarks.latency.stats`: percentiles, latency summaries, the p50 ratio (pure).
- :mod:`benchmarks.latency.report`: ``report.md`` of the latency and throughput modes (pure).
- :mod:`benchmarks.latency.servers`: the stock ``rasa init`` bot and the project's server (``scripts/serve.sh``)
  as subprocesses, their process trees' memory, and stopping them.
- :mod:`benchmarks.latency.clients`: one timed REST turn (blocking, from a chosen loopback address) and the
  concurrent throughput load (asyncio + aiohttp).
- :mod:`benchmarks.latency.profile`: ``py-spy`` under load, its collapsed stacks summarised and drawn as a flame
  graph (SVG).
"""
