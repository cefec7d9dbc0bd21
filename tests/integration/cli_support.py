"""Running the kubelab command line in the integration tests.

`Kubelab` runs it in-process through click's CliRunner (fast: no
interpreter start-up), against the session's apiserver; `run_process` runs
the installed `kubelab` script (or `python -m kubelab`) as a real process,
for what only a process shows: the exit code, stderr, start-up time.
The CLI calls asyncio.run itself, so tests that use it are plain (not
async) functions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from kubelab._cli import cli

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "kubelab"


@dataclass
class Kubelab:
    """`kubelab --server TARGET ...` in-process; namespace via -n in args."""

    target: str

    def __call__(self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, ["--server", self.target, *args], input=input, env=dict(env or {}),
                             catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        result = self(*args, input=input, env=env)
        assert result.exit_code == 0, f"kubelab {' '.join(args)} failed ({result.exit_code}):\n{result.output}"
        return result

    def fails(self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        result = self(*args, input=input, env=env)
        assert result.exit_code == 1, f"kubelab {' '.join(args)} did not fail:\n{result.output}"
        return result


def run_process(target: str, *args: str, input: str | None = None, module: bool = False,
                env: Mapping[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command: Sequence[str] = [sys.executable, "-m", "kubelab"] if module else [str(SCRIPT)]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*command, "--server", target, *args], input=input, capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=REPO)
