"""A second client of the kernel a notebook page runs: executes code there and reads the apps' state back."""

from __future__ import annotations

import json
import time
from pathlib import Path

from jupyter_client import BlockingKernelClient

PROBE = Path(__file__).with_name("kernel_probe.py")


class KernelError(RuntimeError):
    """Code sent to the kernel raised; the message holds its traceback."""


class Kernel:
    """Connects to the kernel of ``connection_file``; ``run`` executes code, ``probe`` calls ``kernel_probe``."""

    def __init__(self, connection_file: Path):
        self.client = BlockingKernelClient(connection_file=str(connection_file))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.run(f"_workbench_probe = {{}}\nexec({PROBE.read_text()!r}, _workbench_probe)")

    def run(self, code: str, timeout_s: float = 120) -> str:
        """Execute ``code`` (not in the notebook's history) and return what it printed."""
        printed: list[str] = []
        errors: list[str] = []

        def collect(message):
            kind, content = message["header"]["msg_type"], message["content"]
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, store_history=False, timeout=timeout_s, output_hook=collect)
        if reply["content"]["status"] != "ok" or errors:
            raise KernelError("\n".join(errors) or str(reply["content"]))
        return "".join(printed)

    def probe(self, function: str, *args):
        """``kernel_probe.<function>(*args)`` in the kernel, its result decoded from JSON."""
        call = f"{function}(*{json.dumps(list(args))})"
        out = self.run(f"import json as _json\nprint(_json.dumps(_workbench_probe[{function!r}](*{json.dumps(args)})))")
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError) as error:
            raise KernelError(f"{call} printed {out!r}") from error

    def wait_for(self, function: str, *args, until, timeout_s: float = 60, every_s: float = 0.2):
        """Call ``probe(function, *args)`` until ``until(result)`` holds; return that result, or the last one on
        timeout (the caller's assertion then says what differs)."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.probe(function, *args)
            if until(result) or time.monotonic() > deadline:
                return result
            time.sleep(every_s)

    def close(self) -> None:
        self.client.stop_channels()
