"""Where every built-in component lives, so that names can be listed without importing them.

Importing a component's module can cost seconds (most of them import torch); the command
line's ``list`` and ``--help`` must not pay that. Each entry maps ``kind -> name ->
"module:attribute"``; :class:`archsearch.registry.Registry` imports the module on the first
``get(name)``, and the module's ``@REGISTRY.register(name)`` decorator then registers it.
``tests/test_startup.py`` checks that this table and the decorators agree.

This module imports nothing: add a line here whenever a built-in component is registered.
"""

from __future__ import annotations

BUILTIN: dict[str, dict[str, str]] = {
    "dataset": {
        "digits": "archsearch.data.datasets:digits",
        "fashion-mnist": "archsearch.data.datasets:fashion_mnist",
    },
    "evaluator": {
        "composite": "archsearch.evaluate.composite:CompositeEvaluator",
        "cost": "archsearch.evaluate.cost:CostEvaluator",
        "hardware": "archsearch.evaluate.hardware:HardwareEvaluator",
        "nasbench-graph-table": "archsearch.evaluate.table:NASBenchGraphEvaluator",
        "nb201-table": "archsearch.evaluate.tabular:NB201TableEvaluator",
        "predictor": "archsearch.evaluate.predictor:PredictorEvaluator",
        "proxy": "archsearch.evaluate.proxy:ProxyEvaluator",
        "sleep": "archsearch.evaluate.synthetic:SleepEvaluator",
        "supernet": "archsearch.oneshot.evaluator:SupernetEvaluator",
        "table": "archsearch.evaluate.table:TableEvaluator",
        "train": "archsearch.evaluate.train:TrainingEvaluator",
    },
    "oneshot": {
        "darts": "archsearch.oneshot.differentiable:DARTS",
        "enas": "archsearch.oneshot.enas:ENAS",
        "fbnet": "archsearch.oneshot.latency_aware:FBNet",
        "gdas": "archsearch.oneshot.differentiable:GDAS",
        "ofa": "archsearch.oneshot.ofa:OnceForAll",
        "proxylessnas": "archsearch.oneshot.latency_aware:ProxylessNAS",
        "rsps": "archsearch.oneshot.spos:RSPS",
        "spos": "archsearch.oneshot.spos:SPOS",
    },
    "predictor": {
        "gates": "archsearch.predict.gates:GATESPredictor",
        "gp": "archsearch.predict.gp:GaussianProcess",
        "lightgbm": "archsearch.predict.trees:GradientBoostedTrees",
        "mlp-ensemble": "archsearch.predict.mlp:MLPEnsemble",
    },
    # proxies register a Proxy wrapping the function named here
    "proxy": {
        "fisher": "archsearch.proxies.pruning:fisher",
        "flops": "archsearch.proxies.cost:flops",
        "grad_norm": "archsearch.proxies.pruning:grad_norm",
        "grasp": "archsearch.proxies.pruning:grasp",
        "jacob_cov": "archsearch.proxies.activations:jacob_cov",
        "l2_norm": "archsearch.proxies.pruning:l2_norm",
        "linear_regions": "archsearch.proxies.activations:linear_regions",
        "naswot": "archsearch.proxies.activations:naswot",
        "ntk": "archsearch.proxies.per_sample:ntk",
        "params": "archsearch.proxies.cost:params",
        "snip": "archsearch.proxies.pruning:snip",
        "synflow": "archsearch.proxies.pruning:synflow",
        "zen": "archsearch.proxies.activations:zen",
        "zico": "archsearch.proxies.per_sample:zico",
    },
    "space": {
        "darts": "archsearch.space.darts:DARTSSpace",
        "define-by-run": "archsearch.space.define_by_run:DefineByRunSpace",
        "mobilenet": "archsearch.space.mobilenet:MobileNetSpace",
        "nasbench-graph": "archsearch.space.nasbench_graph:NASBenchGraphSpace",
        "nb201": "archsearch.space.nb201:NB201Space",
        "table": "archsearch.space.table:TableSpace",
    },
    "strategy": {
        "bananas": "archsearch.strategy.bananas:BANANAS",
        "bohb": "archsearch.strategy.bohb:BOHB",
        "derived": "archsearch.oneshot.run:DerivedArchitecture",
        "evolution": "archsearch.strategy.evolution:RegularizedEvolution",
        "hyperband": "archsearch.strategy.hyperband:Hyperband",
        "local": "archsearch.strategy.local_search:LocalSearch",
        "mo-evolution": "archsearch.strategy.mo_evolution:MultiObjectiveEvolution",
        "mo-predictor": "archsearch.strategy.mo_predictor:MultiObjectivePredictor",
        "nsga2": "archsearch.strategy.nsga2:NSGA2",
        "predictor-evolution": "archsearch.strategy.predictor_evolution:PredictorGuidedEvolution",
        "random": "archsearch.strategy.random_search:RandomSearch",
        "reinforce": "archsearch.strategy.reinforce:Reinforce",
    },
}
