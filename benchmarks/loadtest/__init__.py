"""`make loadtest`: simulated customers hold conversations through the cluster's balancer (`make cluster`) while
a Rasa replica is killed and restarted; a checker then proves from the tracker store, the shop database and the
clients' log that no turn was lost or handled twice and that no order changed without the customer's yes.

Modules: `scenario` (what the customers say and how replies are read; standard library only, shared with the
Locust file), `locustfile` (runs in its own virtual environment, `.venv-load`), `orders` (the orders the
customers use), `checker` (the correctness checks, pure functions plus their database readers), `metrics` and
`report` (figures, report.md/report.json, the plot), `run` (the command line: `python -m benchmarks.loadtest`).
Nothing in this package may import anything at import time beyond the standard library: `locustfile` imports
`scenario` in the Locust environment, which has no project dependencies.
"""
