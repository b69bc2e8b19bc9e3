"""DSID: sequential autoencoders for neural population dynamics.

``dsid.fit(path)`` fits a model to a DSID tensor file without tuning anything (see
:func:`dsid.autofit.fit.fit`); the ``dsid`` command does everything else.
"""
__version__ = "0.1.0"


def fit(data, **kwargs):
    """Fit a model to the DSID tensor file ``data``: ``dsid.fit("my_data.h5", budget="15m")``.
    Keyword arguments and the returned report are :func:`dsid.autofit.fit.fit`'s."""
    from dsid.autofit.fit import fit as _fit

    return _fit(data, **kwargs)
