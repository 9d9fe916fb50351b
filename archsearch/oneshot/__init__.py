"""Weight-sharing and differentiable NAS: supernets, DARTS, GDAS, SPOS/RSPS, ENAS, TE-NAS's
training-free pruning (:mod:`archsearch.oneshot.tenas`), and latency-aware ProxylessNAS and
FBNet on the mobilenet space (:mod:`archsearch.oneshot.latency_aware`), and Once-for-All's
progressive shrinking with specialisation for devices and latency targets
(:mod:`archsearch.oneshot.ofa`, :mod:`archsearch.oneshot.specialise`).

One supernet holds every architecture of a cell space (NAS-Bench-201 or DARTS); a method
trains it once and selects an architecture from it, which is then retrained from scratch
and exported like any other search result::

    from archsearch.oneshot import ONESHOT, build_supernet, load_search_data

    data = load_search_data("fashion-mnist", valid_size=2000, train_size=6000)
    net = build_supernet("nb201", data.input_shape, data.num_classes, channels=8,
                         cells_per_stage=1)
    result = ONESHOT.get("gdas")(epochs=5, arch_lr=3e-3).search(net, data)
    print(result.arch_string, result.history[-1])

Importing this package registers the methods (registry kind ``oneshot``), the ``supernet``
evaluator and the ``derived`` strategy of one-shot studies (:mod:`archsearch.oneshot.run`:
a one-shot search as a stored study, as ``archsearch oneshot --out DIR`` runs it).
"""

from archsearch.oneshot.base import ONESHOT, OneShotMethod, OneShotResult
from archsearch.oneshot.data import load_search_data
from archsearch.oneshot.differentiable import DARTS, GDAS, unrolled_hypergradient
from archsearch.oneshot.enas import ENAS, Controller
from archsearch.oneshot.evaluator import (
    InheritedWeights,
    SupernetEvaluator,
    load_supernet,
    save_supernet,
)
from archsearch.oneshot.latency_aware import ExpectedLatency, FBNet, ProxylessNAS
from archsearch.oneshot.mobile_supernet import MobileNetSupernet
from archsearch.oneshot.ofa import OnceForAll
from archsearch.oneshot.run import DerivedArchitecture, OneShotRun, resume
from archsearch.oneshot.runtime import Runtime
from archsearch.oneshot.specialise import Specialiser, specialise
from archsearch.oneshot.spos import RSPS, SPOS
from archsearch.oneshot.supernet import (
    DARTSSupernet,
    EdgeChoice,
    MixedOp,
    NB201Supernet,
    Supernet,
    build_supernet,
)
from archsearch.oneshot.tenas import TENASResult, tenas_prune

__all__ = [
    "DARTS",
    "ENAS",
    "GDAS",
    "FBNet",
    "ProxylessNAS",
    "ONESHOT",
    "RSPS",
    "SPOS",
    "Controller",
    "DARTSSupernet",
    "DerivedArchitecture",
    "EdgeChoice",
    "ExpectedLatency",
    "InheritedWeights",
    "MixedOp",
    "MobileNetSupernet",
    "NB201Supernet",
    "OneShotMethod",
    "OneShotResult",
    "OnceForAll",
    "OneShotRun",
    "Runtime",
    "Specialiser",
    "Supernet",
    "SupernetEvaluator",
    "TENASResult",
    "build_supernet",
    "load_search_data",
    "load_supernet",
    "resume",
    "save_supernet",
    "specialise",
    "tenas_prune",
    "unrolled_hypergradient",
]
