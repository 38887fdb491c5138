"""Device selection: "auto" means CUDA when available, else CPU; and the machine described in one line.

Example:
    >>> from workbench.devices import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> "torch " + torch.__version__ in describe_machine()
    True
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda[:n]" or a torch.device into a torch.device that exists here."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:index]'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return resolved


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """The CPU, the GPU, torch's version and thread count, in one line."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA GPU"
    cores = f"{os.cpu_count()} logical cores"
    return f"{_cpu_name()} ({cores}) · {gpu} · torch {torch.__version__}, {torch.get_num_threads()} threads"
