"""What every package of the project may import: paths, message keys, config validation and small helpers.

- `assistant.paths`: the project root and how relative paths in configuration are resolved.
- `assistant.keys`: every message, parse-result and status key that crosses a package boundary.
- `assistant.configuration`: the one mechanism that checks a component's or channel's configuration.
- `assistant.fingerprints`, `assistant.files`: content hashes and atomic file writes.
- `assistant.training`: the trained model's name and the epoch-capped config for tests and benchmarks.
- `assistant.torch_runtime`: seeds and torch thread counts (torch imported only when called).

Nothing in here imports the other project packages; of Rasa, only `rasa.shared.exceptions` is used.
"""
