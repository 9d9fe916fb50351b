"""Per-operation latency lookup tables (ProxylessNAS, Cai et al. 2019; FBNet, Wu et al.
2019): each operation a space's networks hold is measured once in its context, and a
network's latency is predicted as the sum over its :class:`~archsearch.hardware.units.Unit` s.

A table is measured per runtime: ``torch`` (eager PyTorch, what a study's ``latency_ms``
measures) or ``onnx`` (ONNX Runtime's CPU provider, ``onnx_latency_ms``). Two corrections
make the sum honest:

* ONNX Runtime drops every operator whose result the output never reads, so for ``onnx``
  only *live* units count (``Unit.live``); PyTorch runs them all.
* Each unit timed alone in ONNX Runtime pays one ``session.run`` (binding the input and
  output) that the whole network pays once. The table measures that cost on a graph that
  only copies a tensor of each unit's input shape and subtracts it from the unit; the bare
  call (key :data:`CALL`) is added back once per network. Eager PyTorch pays each
  module's call inside the network too, so nothing is subtracted there.

Tables are CSV files (``key,latency_ms,iqr_ms``; the header's comment line names the
runtime, the thread count and the batch size) written by ``archsearch latency-table``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.errors import ArchsearchError, DataError
from archsearch.hardware.units import Unit

if TYPE_CHECKING:
    import torch

RUNTIMES = ("torch", "onnx")
#: the key of the per-call overhead an ONNX Runtime table subtracts from each unit
CALL = "__call__"
_HEADER = ("key", "latency_ms", "iqr_ms")


@dataclass
class LatencyTable:
    """Measured latencies of units by key, for one runtime, thread count and batch size."""

    runtime: str
    entries: dict[str, float]
    iqr: dict[str, float] = field(default_factory=dict)
    threads: int = 1
    batch_size: int = 1
    #: the calibration line ``measured = scale * sum + offset_ms`` (identity uncalibrated)
    scale: float = 1.0
    offset_ms: float = 0.0

    def unit_ms(self, key: str) -> float:
        """A unit's own latency: its measurement less the per-call overhead."""
        try:
            measured = self.entries[key]
        except KeyError:
            raise ArchsearchError(
                f"latency table ({self.runtime}) has no unit {key!r}; build it for this space "
                "and input with 'archsearch latency-table'"
            ) from None
        return max(measured - self.entries.get(CALL, 0.0), 0.0)

    def raw_sum(self, units: Iterable[Unit]) -> float:
        """The uncalibrated sum (ms) over the units the runtime runs."""
        counted = [u for u in units if u.live or self.runtime == "torch"]
        return self.entries.get(CALL, 0.0) + sum(self.unit_ms(u.key) for u in counted)

    def predict(self, units: Iterable[Unit]) -> float:
        """The predicted latency (ms) of the network ``units`` make up."""
        return self.scale * self.raw_sum(units) + self.offset_ms

    def save(self, path: str | Path) -> None:
        buffer = io.StringIO()
        buffer.write(
            f"# runtime={self.runtime} threads={self.threads} batch_size={self.batch_size}"
            f" scale={self.scale:.6g} offset_ms={self.offset_ms:.6g}\n"
        )
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_HEADER)
        for key, ms in self.entries.items():
            writer.writerow([key, f"{ms:.6g}", f"{self.iqr.get(key, 0.0):.6g}"])
        Path(path).write_text(buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table written by :meth:`save`; a malformed file is a :class:`DataError`."""
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise DataError(f"cannot read latency table {path}: {error.strerror}") from None
        lines = text.splitlines()
        if not lines or not lines[0].startswith("# runtime="):
            raise DataError(f"{path}: not a latency table (no '# runtime=...' first line)")
        try:
            meta = dict(item.split("=", 1) for item in lines[0][2:].split())
            runtime, threads, batch = meta["runtime"], int(meta["threads"]), int(meta["batch_size"])
            scale, offset = float(meta.get("scale", 1.0)), float(meta.get("offset_ms", 0.0))
        except (ValueError, KeyError):
            raise DataError(f"{path}: malformed first line {lines[0]!r}") from None
        if runtime not in RUNTIMES:
            raise DataError(f"{path}: unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
        rows = list(csv.reader(lines[1:]))
        if not rows or tuple(rows[0]) != _HEADER:
            raise DataError(f"{path}: expected the header {','.join(_HEADER)}")
        entries, iqr = {}, {}
        for number, row in enumerate(rows[1:], start=3):
            try:
                key, ms, spread = row
                entries[key], iqr[key] = float(ms), float(spread)
            except ValueError:
                raise DataError(f"{path}, line {number}: expected key,latency_ms,iqr_ms") from None
        return cls(runtime, entries, iqr, threads, batch, scale, offset)


def distinct_units(units: Iterable[Unit]) -> list[Unit]:
    """One unit per key, in first-seen order."""
    return list({unit.key: unit for unit in reversed(list(units))}.values())[::-1]


def measure_table(
    units: Iterable[Unit],
    runtime: str = "torch",
    *,
    threads: int = 1,
    batch_size: int = 1,
    max_run_time: float = 1.0,
    reference: torch.nn.Module | None = None,
    reference_input: Sequence[int] | None = None,
    reference_ms: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LatencyTable:
    """Measure every distinct unit once on this machine (see the module docstring).

    With a ``reference`` network (and its input shape), the units are timed in interleaved
    rounds against it (:func:`~archsearch.hardware.protocol.interleaved_latencies`) and each
    entry is its ratio to the reference times ``reference_ms`` (default: the reference's
    own median here), which puts a table and whole networks measured at another time on one
    scale despite the machine's drift."""
    import torch

    from archsearch.hardware.measure import measure_latency

    if runtime not in RUNTIMES:
        raise ArchsearchError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    todo = distinct_units(units)
    if runtime == "onnx":
        shapes = {unit.input_shape for unit in todo}
        todo = [Unit(CALL, (1,), _Copy), *(Unit(_io_key(s), s, _Copy) for s in shapes), *todo]
    entries: dict[str, float] = {}
    iqr: dict[str, float] = {}
    if reference is not None:
        from archsearch.hardware.protocol import interleaved_latencies, runner

        torch.manual_seed(0)
        runs = [
            runner(u.build(), u.input_shape, runtime, batch_size=batch_size, threads=threads)
            for u in todo
        ]
        anchor = runner(reference, reference_input, runtime, batch_size=batch_size, threads=threads)
        ratios, measured_ms = interleaved_latencies(runs, anchor, threads=threads)
        scale = measured_ms if reference_ms is None else reference_ms
        for unit, (ratio, spread) in zip(todo, ratios, strict=True):
            entries[unit.key], iqr[unit.key] = ratio * scale, spread * scale
        if progress is not None:
            progress(len(todo), len(todo))
        return LatencyTable(runtime, *_net_of_io(todo, entries, iqr), threads, batch_size)
    if runtime == "onnx":
        from archsearch.hardware.onnx import onnx_latency

        def measure(module: torch.nn.Module, shape: Sequence[int]):
            return onnx_latency(
                module, shape, batch_size=batch_size, threads=threads, max_run_time=max_run_time
            )

    else:

        def measure(module: torch.nn.Module, shape: Sequence[int]):
            return measure_latency(
                module, shape, batch_size=batch_size, threads=threads, max_run_time=max_run_time
            )

    for done, unit in enumerate(todo, start=1):
        torch.manual_seed(0)
        latency = measure(unit.build(), unit.input_shape)
        entries[unit.key], iqr[unit.key] = latency.median_ms, latency.iqr_ms
        if progress is not None:
            progress(done, len(todo))
    return LatencyTable(runtime, *_net_of_io(todo, entries, iqr), threads, batch_size)


def _io_key(shape: Sequence[int]) -> str:
    return f"{CALL}:{'x'.join(str(n) for n in shape)}"


def _net_of_io(
    todo: list[Unit], entries: dict[str, float], iqr: dict[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """ONNX Runtime: each unit timed alone also binds its input and output, a cost that
    grows with the tensor and that the network pays once, not per unit. It is measured on
    a graph that only copies a tensor of the unit's input shape and taken off the unit,
    keeping the bare :data:`CALL` in (:meth:`LatencyTable.unit_ms` takes that off too)."""
    if CALL not in entries:
        return entries, iqr
    io = {key: entries.pop(key) for key in list(entries) if key.startswith(f"{CALL}:")}
    for key in io:
        iqr.pop(key, None)
    for unit in todo:
        if unit.key in entries and unit.key != CALL:
            own = entries[unit.key] - io[_io_key(unit.input_shape)]
            entries[unit.key] = max(own, 0.0) + entries[CALL]
    return entries, iqr


def _Copy():  # noqa: N802 (a module factory, named like the module it makes)
    import torch

    class Copy(torch.nn.Module):
        """The cheapest graph ONNX Runtime runs: one element-wise op on the input."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 0.0

    return Copy()


def require_latency_units(space) -> None:
    """One clear error for a space that cannot cut its networks into latency units."""
    if not space.supports("latency_units"):
        raise ArchsearchError(
            f"space {space.name!r} does not cut its networks into latency units; spaces that "
            "do: nb201, mobilenet"
        )


@dataclass(frozen=True)
class Calibration:
    """The networks a table was calibrated on: architectures, measured ms, the reference
    they were timed against and its median ms then; with the space, input and runtime
    settings they were measured in, so that :meth:`measure` can time them again."""

    archs: list
    measured_ms: list[float]
    reference: torch.nn.Module
    reference_ms: float
    input_shape: tuple[int, ...] = ()
    runtime: str = "torch"
    threads: int = 1
    batch_size: int = 1
    space: Any = None
    num_classes: int = 0

    def measure(self, models: Sequence[torch.nn.Module]) -> tuple[list[float], dict[str, Any]]:
        """Whole networks measured now, on the table's scale.

        A ratio to one reference network cancels a drift that slows every network alike;
        a shared machine's does not (a busy host slows small, call-bound networks less
        than the reference, or more). So the calibration networks are measured again
        beside the models, in the same interleaved rounds against the same reference,
        and the least-squares line from their ms now to their ms when the table was
        measured maps the models' ms now onto the table's scale: twenty yardsticks that
        span the space instead of one. Returns those values and how they were got:
        ``reference_ms_at_table``, ``reference_ms_now``, the line (``slope``,
        ``intercept_ms``) and ``by_reference`` (each model's ratio to the reference times
        the reference's ms then: the one-yardstick answer, for comparison)."""
        import numpy as np
        import torch

        from archsearch.hardware.protocol import measure_many

        torch.manual_seed(0)
        yardsticks = (
            [self.space.build(a, self.input_shape, self.num_classes) for a in self.archs]
            if self.space is not None and len(self.archs) >= 2
            else []
        )
        measured, now_ms = measure_many(
            [*yardsticks, *models], self.input_shape, self.reference, self.runtime,
            threads=self.threads, batch_size=self.batch_size,
        )  # fmt: skip
        mine = measured[len(yardsticks) :]
        by_reference = [ms * self.reference_ms / now_ms for ms in mine]
        info: dict[str, Any] = {
            "reference_ms_at_table": self.reference_ms,
            "reference_ms_now": now_ms,
            "by_reference": by_reference,
        }
        if not yardsticks:
            return by_reference, info
        slope, intercept = np.polyfit(measured[: len(yardsticks)], self.measured_ms, 1)
        info.update(slope=float(slope), intercept_ms=float(intercept))
        return [float(slope * ms + intercept) for ms in mine], info


def calibration_networks(
    space,
    input_shape: Sequence[int],
    num_classes: int,
    runtime: str,
    networks: int,
    *,
    seed: int = 0,
    threads: int = 1,
    batch_size: int = 1,
) -> Calibration:
    """``networks`` seeded random architectures of ``space`` and their whole-network
    latencies (ms), measured ten at a time in interleaved rounds against the space's
    :func:`~archsearch.hardware.protocol.reference_network`, with that reference and its
    median ms (the scale they are on)."""
    import numpy as np
    import torch

    from archsearch.hardware.protocol import measure_many, reference_network

    reference = reference_network(space, input_shape, num_classes)
    archs = space.distinct_samples(np.random.default_rng(seed), networks)
    torch.manual_seed(0)
    models = [space.build(a, input_shape, num_classes) for a in archs]
    measured, reference_ms = measure_many(
        models, input_shape, reference, runtime, threads=threads, batch_size=batch_size
    )
    return Calibration(
        archs, measured, reference, reference_ms, tuple(input_shape), runtime, threads,
        batch_size, space, num_classes,
    )  # fmt: skip


def fit_calibration(table: LatencyTable, raw: Sequence[float], measured: Sequence[float]) -> None:
    """Set ``table``'s calibration line to the least squares of ``measured`` on the raw
    sums (scale and offset; with one network, scale alone)."""
    import numpy as np

    x, y = np.asarray(raw, dtype=float), np.asarray(measured, dtype=float)
    if len(x) >= 2 and np.ptp(x) > 0:
        scale, offset = np.polyfit(x, y, 1)
    else:
        scale, offset = float(np.sum(x * y) / np.sum(x * x)), 0.0
    table.scale, table.offset_ms = float(scale), float(offset)


def measure_calibrated_table(
    space,
    input_shape: Sequence[int],
    num_classes: int,
    runtime: str = "torch",
    networks: int = 20,
    *,
    seed: int = 0,
    threads: int = 1,
    batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[LatencyTable, Calibration]:
    """A table of every unit of ``space`` calibrated on ``networks`` random networks
    measured whole, all of it against one reference network: the calibration networks
    first (:func:`calibration_networks`), then the units in interleaved rounds against the
    same reference on the same scale, then the line from the table's sum to the networks'
    measurement (:func:`fit_calibration`). Measured single-shot, units and networks taken
    minutes apart differ by the machine's drift, which the line would then fit instead of
    the gap between units alone and units in a network. Returns the table and its
    :class:`Calibration`."""
    calibration = calibration_networks(
        space, input_shape, num_classes, runtime, networks,
        seed=seed, threads=threads, batch_size=batch_size,
    )  # fmt: skip
    table = measure_table(
        space.all_latency_units(input_shape, num_classes),
        runtime,
        threads=threads,
        batch_size=batch_size,
        reference=calibration.reference,
        reference_input=input_shape,
        reference_ms=calibration.reference_ms,
        progress=progress,
    )
    units = (space.latency_units(a, input_shape, num_classes) for a in calibration.archs)
    fit_calibration(table, [table.raw_sum(u) for u in units], calibration.measured_ms)
    return table, calibration
