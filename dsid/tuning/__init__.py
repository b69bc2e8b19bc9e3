"""Hyperparameter search: population-based training (PBT) of DSID models with Ray Tune.

``pbt_logic`` (exploit/explore decisions, no Ray), ``hparams`` (where each tuned hyperparameter
lives in a config), ``trainable`` (one member), ``scheduler`` (Ray's PBT driven by ``pbt_logic``),
``pbt`` (``run_pbt``: the search, the plot and the export of the best member), ``commands``
(``dsid tune``).
"""
