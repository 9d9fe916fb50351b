"""The one place that decides where and how networks run: device, precision, memory format,
CPU threads and seeding, for the training evaluator, the supernets and the table builder.
How they take a step and draw their batches is shared as well, in :mod:`archsearch.training`.

Mixed precision is bfloat16 autocast: it needs no loss scaling (bfloat16 has float32's
exponent range), which keeps the bi-level updates (DARTS's unrolled step, REINFORCE) free of
scaler bookkeeping; ``auto`` turns it on for CUDA only. The thread count is part of every
recipe because it alone changed the bits of a CPU training run (see
:mod:`archsearch.evaluate.train`).
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchsearchError, DataError

AUTO = "auto"


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` (``cuda:N``) or ``auto`` (CUDA when available) as a torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" or device.startswith("cuda"):
        try:
            resolved = torch.device(device)
        except RuntimeError:
            resolved = None
        if resolved is not None:
            if resolved.type == "cuda" and not torch.cuda.is_available():
                raise ArchsearchError(f"device {device!r} asked for, but CUDA is not available")
            return resolved
    raise ArchsearchError(f"unknown device {device!r}; devices: cpu, cuda, cuda:N, auto")


def _flag(value: bool | str | None, default: bool, what: str) -> bool:
    if value is None or value == AUTO:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ArchsearchError(f"{what} must be auto, true or false, got {value!r}")


@dataclass(frozen=True)
class Runtime:
    """A resolved device with its precision and memory-format settings."""

    device: torch.device
    amp: bool = False
    channels_last: bool = False

    @classmethod
    def resolve(
        cls,
        device: str | torch.device | None = AUTO,
        amp: bool | str | None = AUTO,
        channels_last: bool | str | None = AUTO,
    ) -> Runtime:
        """``auto`` picks CUDA when present (and then mixed precision) and channels-last."""
        resolved = resolve_device(str(device) if device is not None else AUTO)
        on_gpu = resolved.type == "cuda"
        return cls(
            resolved,
            amp=_flag(amp, on_gpu, "amp"),
            channels_last=_flag(channels_last, True, "channels_last"),
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def module(self, model: nn.Module) -> nn.Module:
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def describe(self) -> dict[str, object]:
        name = (
            torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else f"cpu ({torch.get_num_threads()} threads)"
        )
        return {"device": name, "amp": self.amp, "channels_last": self.channels_last}


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads inside (``None``: as set), restoring them after.

    The count is process-wide: it changes reduction order, and so the bits of a result.
    """
    previous = torch.get_num_threads()
    if threads is not None and threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generators inside, and give the caller's state back afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(seed)
        yield


def load_checkpoint(path: str | Path, what: str) -> Any:
    """Read a weights file archsearch wrote, safely: ``weights_only=True`` unpickles tensors
    and plain containers only, so a crafted file cannot run code, and any unreadable file
    (random bytes, a foreign pickle, a truncated write) is one :class:`DataError` line
    naming ``what`` it should have been, never a traceback."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (UnpicklingError, RuntimeError, EOFError, ...)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, pickle.UnpicklingError):  # torch's text would suggest unsafe loading
            reason = "not a weights file (random bytes, or a pickle of more than tensors)"
        raise DataError(f"cannot read {what} {path}: {reason}") from None
