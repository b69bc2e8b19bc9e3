"""DSID: sequential autoencoders for neural population dynamics.

The Python API (the ``dsid`` command does the same from a shell)::

    import dsid
    data = dsid.data.from_numpy(counts, bin_ms=10, out="my_data.h5")   # (trials, T, N) counts
    report = dsid.fit("my_data.h5", budget="15m")                     # rules of the data, no tuning
    run = dsid.load_run(report["run_dir"])
    rates = run.outputs("valid")["rates"]  # also factors, inferred_inputs, trial_id, time_ms
    metrics = dsid.train(["experiment=lorenz_lfads", "trainer.max_epochs=5"], run_dir="runs/mine")
"""

__version__ = "0.1.0"


def fit(data, **kwargs):
    """Fit a model to the DSID tensor file ``data`` (``dsid.fit("my_data.h5", budget="15m")``) or
    to counts in memory (``dsid.fit(counts, bin_ms=10)``, (trials, T, N), with the options of
    ``dsid.data.from_numpy``: :func:`dsid.autofit.arrays.fit_arrays`). Keyword arguments and the
    returned report are :func:`dsid.autofit.fit.fit`'s."""
    from dsid.autofit.arrays import fit_data

    return fit_data(data, **kwargs)


def train(config, run_dir=None, **kwargs):
    """Train from a composed config or a list of ``dsid train`` overrides; returns the final
    metrics. Keyword arguments are :func:`dsid.runs.train.train`'s."""
    from dsid.runs.config import compose
    from dsid.runs.train import train as _train

    if isinstance(config, (list, tuple)):
        config = compose(list(config))
    return _train(config, run_dir=run_dir, **kwargs)


def load_run(run_dir):
    """The run in ``run_dir``: ``.outputs(split)`` (rates, factors, inferred inputs), ``.metrics``,
    ``.model``, ``.config`` (:class:`dsid.runs.load.Run`)."""
    from dsid.runs.load import load_run as _load_run

    return _load_run(run_dir)


def __getattr__(name):
    if name == "data":  # dsid.data without importing it (and torch) with the package
        import importlib

        return importlib.import_module("dsid.data")
    raise AttributeError(f"module 'dsid' has no attribute {name!r}")
