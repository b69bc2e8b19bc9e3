"""The multi-area model in one place: :class:`MultiAreaSAE` (``model``), the areas' layout checks
(``layout``), its two unrolls (``scan``: the compiled LFADS scan with a group per area; ``loop``:
one bin at a time, for everything the scan does not cover) and the communication read-outs
(``readouts``: effectome, delays, one-step effects). The coupling components themselves are
registered in ``dsid.modules.coupling``; recovery metrics and figures live in
``dsid.evaluation.multiarea`` and the synthetic ground truth in ``dsid.data.multiarea``."""

from dsid.models.multiarea.model import MultiAreaSAE

__all__ = ["MultiAreaSAE"]
