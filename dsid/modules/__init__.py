"""Registered components, one per file in a folder per kind. Importing this package registers every
built-in component; the registry imports it on its first look-up
(``dsid.registry.BUILTIN_PROVIDERS``)."""

from dsid.modules.augmentations import coordinated_dropout, spike_jitter, temporal_shift  # noqa: F401
from dsid.modules.coupling import bottleneck, delay, gated, lowrank, none  # noqa: F401
from dsid.modules.encoders import bigru, transformer  # noqa: F401
from dsid.modules.generators import lfads, linear, node  # noqa: F401
from dsid.modules.observations import (  # noqa: F401
    gamma,
    gaussian,
    negative_binomial,
    poisson,
    zero_inflated_gamma,
)
from dsid.modules.priors import ar1, student_t  # noqa: F401
from dsid.modules.priors import gaussian as gaussian_prior  # noqa: F401
from dsid.modules.readouts import linear as linear_readout  # noqa: F401
