"""Zero-cost proxies: scoring untrained networks, combining the scores, diagnosing them.

Every proxy is registered in :data:`PROXIES` under its name and follows the contract in
:mod:`archsearch.proxies.base` (higher is better, side-effect free, seeded, device of the
inputs). Built-in proxies:

==================  ============================================  =====  ======  =====
name                paper                                         data   labels  batch
==================  ============================================  =====  ======  =====
``params``          baseline (Abdelfattah et al. 2021)            no     no      -
``flops``           baseline (Abdelfattah et al. 2021)            no     no      1
``synflow``         Tanaka et al. 2020                            no     no      1
``l2_norm``         Abdelfattah et al. 2021                       no     no      -
``zen``             Lin et al. 2021 (Zen-NAS)                     no     no      16
``linear_regions``  Chen et al. 2021 (TE-NAS)                     no     no      1000
``naswot``          Mellor et al. 2021                            yes    no      32
``jacob_cov``       Mellor et al. 2020                            yes    no      16
``ntk``             Chen et al. 2021 (TE-NAS)                     yes    no      16
``snip``            Lee et al. 2019                               yes    yes     16
``grasp``           Wang et al. 2020                              yes    yes     16
``fisher``          Theis et al. 2018; Turner et al. 2020         yes    yes     16
``grad_norm``       Abdelfattah et al. 2021                       yes    yes     16
``zico``            Li et al. 2023                                yes    yes     16
==================  ============================================  =====  ======  =====

"batch" is the number of inputs a proxy reads (the first rows of the batch it is given, or
inputs it draws itself: synflow one all-ones input, Zen Gaussian noise, linear regions 1000
Gaussian 3x3 inputs). The papers use 64 (128 for NASWOT); these smaller batches keep all
proxies of one NAS-Bench-201 network under two CPU-seconds, and ``compute_proxies(...,
batch_size=64)`` on a batch of 64 restores the papers' sizes. "data: no" proxies read only
the input shape, so their scores do not depend on the batch given.
"""

from archsearch.proxies import activations, cost, per_sample, pruning  # noqa: F401 (register)
from archsearch.proxies.base import (
    PROXIES,
    LossFn,
    Proxy,
    compute_proxies,
    compute_proxy,
    proxy_info,
    register_proxy,
    resolve_proxy_names,
)
from archsearch.proxies.combine import (
    ProxyWeights,
    fit_proxy_weights,
    normalised_ranks,
    rank_average,
)
from archsearch.proxies.report import diagnose_estimators, format_table

__all__ = [
    "PROXIES",
    "LossFn",
    "Proxy",
    "ProxyWeights",
    "compute_proxies",
    "compute_proxy",
    "diagnose_estimators",
    "fit_proxy_weights",
    "format_table",
    "normalised_ranks",
    "proxy_info",
    "rank_average",
    "register_proxy",
    "resolve_proxy_names",
]
