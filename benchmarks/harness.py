"""What every benchmark script shares: flag conventions, a machine header, a JSON-lines result
cache and ``--json`` output.

Not library code (nothing here computes a figure): it keeps the scripts' presentation alike,
so that a result file says on which machine, with which versions and under which load it was
measured, and so that every script resumes and exports the same way.

Flags (:func:`add_common`, each only where the script asks for it):

* ``--seeds N`` / ``--first-seed K``: runs with seeds K..K+N-1 (split a benchmark over
  machines with ``--first-seed``);
* ``--workers N``: worker processes, one torch thread each;
* ``--threads N``: torch CPU threads of this process;
* ``--cache PATH``: JSON lines of finished runs (:class:`Cache`), so a killed run resumes;
* ``--json [PATH]``: the figures as JSON, to PATH, or with no PATH to stdout (the tables
  then go to stderr, so stdout stays parseable).

Scripts import it as a sibling module (``benchmarks/`` is on ``sys.path`` when a script in it
runs; tests add it themselves).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

#: ``--json`` given without a path: JSON to stdout
STDOUT = "-"


def add_common(
    parser: argparse.ArgumentParser,
    *,
    seeds: int | None = None,
    first_seed: bool = False,
    workers: int | None = None,
    threads: int | None = None,
    cache: bool = False,
    json_output: bool = True,
    seeds_help: str | None = None,
) -> argparse.ArgumentParser:
    """Add the shared flags a script uses, with its own defaults (None: flag not offered)."""
    if seeds is not None:
        parser.add_argument("--seeds", type=int, default=seeds, help=seeds_help)
    if first_seed:
        parser.add_argument(
            "--first-seed", type=int, default=0, help="to split a run over machines"
        )
    if workers is not None:
        parser.add_argument("--workers", type=int, default=workers)
    if threads is not None:
        parser.add_argument("--threads", type=int, default=threads, help="torch CPU threads")
    if cache:
        parser.add_argument("--cache", type=Path, help="JSON lines of finished runs (resumes)")
    if json_output:
        parser.add_argument(
            "--json",
            nargs="?",
            const=STDOUT,
            default=None,
            metavar="PATH",
            help="also write the figures as JSON to PATH (no PATH: to stdout, tables to stderr)",
        )
    return parser


def seed_range(args: argparse.Namespace) -> range:
    """The seeds of ``--seeds``/``--first-seed``."""
    return range(getattr(args, "first_seed", 0), getattr(args, "first_seed", 0) + args.seeds)


def command_line() -> str:
    """The command as typed, with the interpreter's name only (paths differ per machine)."""
    return " ".join([Path(sys.executable).name, *sys.argv])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def load_average() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def machine_info(threads: int | None = None, workers: int | None = None) -> dict[str, Any]:
    """The measuring machine as a dict: what a reader needs to compare two runs.

    Reads torch's version from the package metadata, so a script whose main process never
    imports torch (its workers do) does not pay for the import; the thread count and GPU are
    asked of torch only when it is already imported.
    """
    torch = sys.modules.get("torch")
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__ if torch is not None else _version("torch"),
    }
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    elif threads is not None:
        info["torch_threads"] = threads
    if workers is not None:
        info["workers"] = workers
    return info


def machine_line(info: Mapping[str, Any]) -> str:
    """:func:`machine_info` on one line."""
    parts = [
        f"{info['cpu']} ({info['arch']}), {info['cores']} cores"
        + (f" ({info['usable_cores']} usable)" if info.get("usable_cores") else ""),
        f"load average {info['load_average']}",
        f"Python {info['python']}, torch {info['torch']}",
    ]
    if "torch_threads" in info:
        parts.append(f"{info['torch_threads']} torch thread(s)")
    if "gpu" in info:
        parts.append(info["gpu"])
    if "workers" in info:
        parts.append(f"workers {info['workers']} (1 torch thread each)")
    parts.append(info["date"])
    return "; ".join(parts)


def header(
    args: argparse.Namespace | None = None, settings: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Print the command, the machine and the run's ``settings``; return them as a dict.

    ``args`` supplies ``--threads`` and ``--workers`` where the script has them.
    """
    threads = getattr(args, "threads", None) if args is not None else None
    workers = getattr(args, "workers", None) if args is not None else None
    info = machine_info(threads=threads, workers=workers)
    print("command:", command_line())
    print("machine:", machine_line(info))
    if settings:
        print("settings:", settings)
    sys.stdout.flush()
    return {"command": command_line(), "machine": info, **extra}


@contextlib.contextmanager
def json_mode(args: argparse.Namespace) -> Iterator[None]:
    """With ``--json`` and no path, send everything printed to stderr (stdout gets the JSON)."""
    if getattr(args, "json", None) == STDOUT:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        yield


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays become Python numbers and lists, NaN becomes null."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_json(target: str | Path | None, payload: Any, indent: int | None = 1) -> None:
    """The ``--json`` printer: ``payload`` to the file ``target``, to stdout for ``-``, or
    nowhere for None. Call it after leaving :func:`json_mode`, which holds stdout back."""
    if target is None:
        return
    text = json.dumps(_plain(payload), indent=indent, default=str)
    if str(target) == STDOUT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


class Cache:
    """An append-only JSON-lines file of finished runs, keyed by some of their fields.

    Each finished run is one line, written and flushed at once, so a kill loses at most the
    run in progress; a line cut short by a kill does not parse and is skipped (that run is
    redone). Of two rows with the same key, ``prefer(old, new)`` decides which is kept (the
    later by default). ``path=None`` is a cache that keeps nothing, so scripts need no
    special case.
    """

    def __init__(
        self,
        path: str | Path | None,
        key: Sequence[str],
        prefer: Callable[[dict, dict], dict] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.key = tuple(key)
        self.prefer = prefer or (lambda old, new: new)
        self.rows: dict[Hashable, dict] = {}
        self.skipped = 0
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                    key_ = self.key_of(row)
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.skipped += 1  # a line cut short by a kill: that run is redone
                    continue
                self.rows[key_] = self.prefer(self.rows[key_], row) if key_ in self.rows else row

    def key_of(self, row: Mapping[str, Any]) -> tuple:
        return tuple(_hashable(row[k]) for k in self.key)

    def get(self, *key: Any) -> dict | None:
        return self.rows.get(tuple(_hashable(k) for k in key))

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: Mapping[str, Any]) -> None:
        """Keep ``row`` and append it to the file (one write, flushed)."""
        row = _plain(dict(row))
        key = self.key_of(row)
        self.rows[key] = self.prefer(self.rows[key], row) if key in self.rows else row
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab+") as f:  # appends go to the end whatever the seek
                end = f.seek(0, os.SEEK_END)
                torn = end > 0 and f.seek(end - 1) >= 0 and f.read(1) != b"\n"
                # after a line cut by a kill, start a new line: the row must not join it
                f.write((b"\n" if torn else b"") + json.dumps(row).encode() + b"\n")
                f.flush()


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value
