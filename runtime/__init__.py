"""The Rasa server process around the model: what `scripts/rasa_run.py` installs before Rasa starts.

- :mod:`runtime.rasa_speedups`: two per-turn costs of Rasa 3.6 removed without changing a result.

Like :mod:`stores`, it may import Rasa and :mod:`assistant`, never the channels, actions or shop.
"""
