"""Running the kernel-facing tools: iptables-restore/-save, nft, conntrack.

Every backend writes through a `CommandRunner`, so there is one place that
knows how a command is run and how its failure reads. A runner may be
bound to a network namespace (`ip netns exec NS ...`): the proxy itself
runs inside its node's namespace and needs none, but the benchmark and
tests that drive a backend from outside point it at a scratch namespace.

A failing command raises CommandError carrying the tool's own stderr
(iptables-restore names the line it choked on); the proxy logs it and
retries with a full sync, it never leaves half-applied state behind
because iptables-restore and nft -f are each one atomic transaction.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)


class CommandError(RuntimeError):
    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr
        super().__init__(f"{' '.join(argv)} exited with {code}: {stderr.strip()[:2000]}")


class CommandRunner:
    def __init__(self, netns: str = "") -> None:
        self.netns = netns

    def argv(self, argv: Sequence[str]) -> list[str]:
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(argv)

    def run(self, argv: Sequence[str], stdin: str | None = None, *, check: bool = True) -> str:
        full = self.argv(argv)
        proc = subprocess.run(full, input=stdin, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise CommandError(full, proc.returncode, proc.stderr)
        return proc.stdout


def conntrack_available() -> bool:
    return shutil.which("conntrack") is not None


class ConntrackFlusher:
    """Deletes UDP conntrack entries that would keep sending packets to an
    endpoint that is gone, or keep a just-repaired service "rejected".

    TCP needs none of this (a dead endpoint resets or times out and the
    client reconnects through the new rules); UDP has no connection, so a
    client reusing its source port would follow the stale entry forever.
    It uses the `conntrack` tool (conntrack-tools): its filters are
    the kernel's own and its failures read plainly. Without the tool the
    proxy still works and logs once that stale UDP flows are not flushed.
    """

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner
        self._warned = False

    def _delete(self, args: list[str]) -> None:
        if not conntrack_available():
            if not self._warned:
                log.warning("conntrack tool not found (Debian package conntrack): stale UDP flows are not flushed")
                self._warned = True
            return
        # exit code 1 with "0 flow entries have been deleted" is not an error
        self.runner.run(["conntrack", "-D", *args], check=False)

    def flush_endpoint(self, service_ip: str, endpoint_ip: str, protocol: str = "udp") -> None:
        self._delete(["-p", protocol, "--orig-dst", service_ip, "--dst-nat", endpoint_ip])

    def flush_nodeport_endpoint(self, node_port: int, endpoint_ip: str, protocol: str = "udp") -> None:
        self._delete(["-p", protocol, "--orig-port-dst", str(node_port), "--dst-nat", endpoint_ip])

    def flush_service(self, service_ip: str, protocol: str = "udp") -> None:
        self._delete(["-p", protocol, "--orig-dst", service_ip])

    def flush_nodeport(self, node_port: int, protocol: str = "udp") -> None:
        self._delete(["-p", protocol, "--orig-port-dst", str(node_port)])
