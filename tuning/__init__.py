"""Offline tuning of the encoders (`make tune-text`, `make tune-images`); not part of the Rasa graph.

- `tuning.text`: fine-tunes the sentence encoder (all-MiniLM-L6-v2) on labelled intents;
- `tuning.image`: fine-tunes the last stages of EfficientNet-Lite0 on labelled catalog photos;
- `tuning.io`: what both write: a model directory swapped into place atomically, and its `tuning.json`.

The NLU components only read what these tools write (a model directory named by `model_path` / `weights_path`
in config.yml); nothing here is imported at serving time.
"""
