"""The zero-cost proxy contract and registry.

A zero-cost proxy scores a network at initialisation, without training, so that a search can
rank thousands of candidates in the time one training run takes. Every proxy is one function
with one decorator::

    @register_proxy("snip", uses_labels=True, batch_size=16)
    def snip(model, inputs, targets, loss_fn) -> float:
        ...

Contract, which every proxy keeps and :func:`compute_proxy` enforces around it:

* **Signature.** ``fn(model, inputs, targets, loss_fn) -> float``: any ``nn.Module``, a batch of
  inputs (the first ``batch_size`` rows of the batch handed to :func:`compute_proxy`), integer
  class targets (``None`` for proxies with ``uses_labels=False``) and a loss
  ``loss_fn(logits, targets) -> scalar`` (cross-entropy unless the caller gives another).
* **Higher is better.** A larger score predicts a better network, for every proxy, so that
  diagnostics and combinations never need to know a proxy's sign. Proxies whose paper
  minimises a quantity return its negative (the NTK condition number is returned as
  ``-cond``). A network that ignores its input (a cell with no path from input to output)
  scores ``-inf``: predicted worst, not missing. ``nan`` means the proxy cannot score this
  kind of module (e.g. NASWOT on a network without ``nn.ReLU`` modules).
* **No side effects.** The proxy receives a private deep copy of the model, in training mode
  (batch-norm uses batch statistics, as in the papers); the caller's model, its weights and
  its BN statistics are untouched. A proxy registered with ``mutates=True`` may re-initialise,
  re-type or rewire its copy; the others must leave parameter values and dtypes alone (they
  may switch BN to batch statistics only) and then share one copy.
* **Determinism.** All randomness (fresh inputs, re-initialisation) is drawn from torch's
  global generator, which :func:`compute_proxy` seeds with ``seed`` inside a forked RNG state;
  the same seed, model and batch give the same score on CPU. On CUDA, scores agree up to
  floating-point reduction order (use ``torch.use_deterministic_algorithms`` for bitwise).
* **Device.** Everything runs on the device of ``inputs``; the model copy is moved there.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor | None, LossFn], float]


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: the scoring function and what it needs."""

    name: str
    fn: ProxyFn
    #: reads the data of the batch (False: only its shape, or nothing at all)
    uses_data: bool
    #: needs class targets and a loss
    uses_labels: bool
    #: rows of the batch it scores (None: all given); documented per proxy
    batch_size: int | None
    #: first line of the function's docstring: paper and what it measures
    summary: str
    #: changes the model's parameters or modules (re-initialises, re-types, rewires)
    mutates: bool = False
    #: meant for a thin copy of the network (width 1), which runners that can build one
    #: pass instead of the full network (TE-NAS's linear regions)
    thin_probe: bool = False

    def __call__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        loss_fn: LossFn | None = None,
        seed: int = 0,
    ) -> float:
        return compute_proxy(self.name, model, inputs, targets, loss_fn=loss_fn, seed=seed)


PROXIES: Registry[Proxy] = Registry("proxy")


def register_proxy(
    name: str,
    *,
    uses_data: bool = True,
    uses_labels: bool = False,
    batch_size: int | None = None,
    mutates: bool = False,
    thin_probe: bool = False,
) -> Callable[[ProxyFn], ProxyFn]:
    """Register ``fn`` as proxy ``name``; the function itself is returned unchanged.

    ``mutates=True`` for a proxy that changes parameter values, dtypes or modules of the
    model it is given (running statistics do not count: see :func:`compute_proxies`);
    ``thin_probe=True`` for one that is meant to score a width-1 copy of the network.
    """

    def decorator(fn: ProxyFn) -> ProxyFn:
        doc = (fn.__doc__ or name).strip().splitlines()[0]
        proxy = Proxy(name, fn, uses_data, uses_labels, batch_size, doc, mutates, thin_probe)
        PROXIES.register(name)(proxy)
        return fn

    return decorator


def resolve_proxy_names(spec: str | Sequence[str]) -> list[str]:
    """Proxy names from ``"all"``, a comma list or a sequence; unknown names fail listing the
    known ones."""
    _load_builtin()
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ArchsearchError(f"no proxies named; known proxies: {', '.join(PROXIES.names())}")
    if names == ["all"]:
        return PROXIES.names()
    for n in names:
        PROXIES.get(n)  # raises UnknownComponentError listing the known proxies
    return list(dict.fromkeys(names))


def compute_proxy(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    loss_fn: LossFn | None = None,
    seed: int = 0,
) -> float:
    """Score ``model`` with proxy ``name`` on a private copy, seeded (see the module contract)."""
    return compute_proxies([name], model, inputs, targets, loss_fn=loss_fn, seed=seed)[name]


def compute_proxies(
    names: Iterable[str],
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    loss_fn: LossFn | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    timings: dict[str, float] | None = None,
    owned: bool = False,
) -> dict[str, float]:
    """Several proxies of one model on one batch, each seeded with ``seed``.

    Proxies that only read the weights share one copy of the model (a deep copy costs about
    as much as a cheap proxy); training-mode forward passes update its BN running statistics,
    which no training-mode forward reads, so each score equals :func:`compute_proxy`'s.
    Proxies registered with ``mutates=True`` get a fresh copy each.

    ``batch_size`` replaces every proxy's own batch size (e.g. the papers' 64 or 128);
    ``timings``, when given, receives the seconds each proxy took (the shared copy is
    charged to the first proxy that uses it).

    ``owned=True`` says the caller hands ``model`` over and will not use it again (e.g. a
    network built only to be scored): one proxy then works on ``model`` itself instead of a
    copy, the last one to run, so that every other proxy still copies an untouched model
    (the weight-reading proxies, which share one working model, run after the mutating
    ones). Deep-copying a NAS-Bench-201 network costs about as much as synflow itself, so
    this saves a third to a half of the time of a cheap proxy set; the scores are the same.
    """
    _load_builtin()
    names = list(dict.fromkeys(names))
    proxies = [PROXIES.get(n) for n in names]
    for proxy in proxies:
        if proxy.uses_labels and targets is None:
            raise ArchsearchError(f"proxy {proxy.name!r} needs targets (class labels) and a loss")
    if owned:  # mutating proxies first: each copies the model before anything touches it
        proxies = [p for p in proxies if p.mutates] + [p for p in proxies if not p.mutates]
    shared: nn.Module | None = None
    scores = {}
    for i, proxy in enumerate(proxies):
        start = time.perf_counter()
        last = i == len(proxies) - 1
        if proxy.mutates:
            own = owned and last  # no reader comes after: nothing else needs the original
            work = (model if own else copy.deepcopy(model)).to(inputs.device)
        else:
            if shared is None:
                shared = (model if owned else copy.deepcopy(model)).to(inputs.device)
            work = shared
        work.train()
        size = proxy.batch_size if batch_size is None or proxy.batch_size == 1 else batch_size
        n = len(inputs) if size is None else min(size, len(inputs))
        y = None if targets is None else targets[:n].to(inputs.device)
        devices = [inputs.device] if inputs.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            scores[proxy.name] = float(proxy.fn(work, inputs[:n], y, loss_fn or F.cross_entropy))
        if timings is not None:
            timings[proxy.name] = time.perf_counter() - start
    return {n: scores[n] for n in names}


def proxy_info() -> Mapping[str, Proxy]:
    """Every registered proxy by name (for listings and documentation)."""
    _load_builtin()
    return {n: PROXIES.get(n) for n in PROXIES.names()}


def _load_builtin() -> None:
    import archsearch.proxies  # noqa: F401  (registers the built-in proxies)


# ------------------------------------------------------------------ helpers for proxies
WEIGHT_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Convolution and linear layers: the units the pruning-at-init proxies score.

    Abdelfattah et al. (2021) sum per-layer saliencies over exactly these layers' weights.
    """
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def remove_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every batch-norm layer by the identity, in place.

    The zero-cost-proxies code computes synflow on a copy of the network built without BN
    (``bn=False``); for an arbitrary module, swapping BN for identity is the same network.
    """
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, child_name, nn.Identity())
    return model


def features_before_pooling(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The input of the last global average pooling (the classifier removed), or the output.

    Zen-NAS scores the feature map before global pooling; a module's last
    ``AdaptiveAvgPool2d`` marks it without knowing the module's class.
    """
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not pools:
        return model(inputs)
    captured: list[torch.Tensor] = []
    handle = pools[-1].register_forward_hook(lambda m, i, o: captured.append(i[0]))
    try:
        out = model(inputs)
    finally:
        handle.remove()
    return captured[-1] if captured else out


def relu_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.ReLU)]
