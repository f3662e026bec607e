"""Parts of the OutOfScopeDetector (`components.out_of_scope`): signals, calibration, persistence, config.

The signals and the calibration have no Rasa imports, so `benchmarks/calibrate_ood.py` and the unit tests use
them directly.
"""
#: Component name used in log lines and config errors.
NAME = "OutOfScopeDetector"
