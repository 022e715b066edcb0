"""Machine-learning signal models for learned strategies (issue #9).

Modules: :mod:`.features` (causal feature set from the indicator library), :mod:`.labels`
(forward-return and triple-barrier labels, sample weights by label overlap), :mod:`.cv` (purged
and embargoed cross-validation), :mod:`.models` (scikit-learn / LightGBM / XGBoost estimators,
hyper-parameter search, calibration, ensembles), :mod:`.sizing` (probability to position),
:mod:`.drift` (population stability index, rolling hit rate) and :mod:`.registry` (versioned
models on disk under ``FW_HOME/models``).

Nothing here is imported by the framework's core; strategies import what they need.
"""
