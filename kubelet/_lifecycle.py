"""Container lifecycle hooks: postStart right after a container starts,
preStop before it is sent SIGTERM.

A handler is an exec in the container, an HTTP GET (to the pod's IP unless
`host` says otherwise, port by number or name), or a sleep. tcpSocket
handlers are accepted and do nothing, as in Kubernetes. The hook's failure
is returned as a message, never raised: a failed postStart kills the
container (which restarts per policy, event FailedPostStartHook); a failed
preStop is reported (FailedPreStopHook) and termination goes on. The caller
bounds a hook's time (preStop by the grace period).
"""

from __future__ import annotations

from api import Clock
from proto import core_pb2

from ._network import Network
from ._prober import http_request
from ._runtime import CRIError, Runtime


class HookRunner:
    def __init__(self, runtime: Runtime, network: Network, clock: Clock) -> None:
        self.runtime = runtime
        self.network = network
        self.clock = clock

    async def run(self, handler: core_pb2.LifecycleHandler, pod: core_pb2.Pod, container: core_pb2.Container,
                  container_id: str, pod_ip: str, timeout: int = 0) -> str | None:
        """None on success, else what went wrong."""
        try:
            if handler.HasField("exec"):
                resp = await self.runtime.exec_sync(container_id, list(handler.exec.command), timeout)
                if resp.exit_code != 0:
                    out = (resp.stdout + resp.stderr).decode(errors="replace").strip()
                    return f"command {list(handler.exec.command)} exited with {resp.exit_code}: {out}".strip()
                return None
            if handler.HasField("httpGet"):
                url, headers = http_request(handler.httpGet, container, pod_ip)
                code = await self.network.http_get(pod.metadata.name, container.name, url, headers, timeout or 30)
                if code >= 400:
                    return f"HTTP lifecycle hook ({handler.httpGet.path}) for Container {container.name!r} in Pod " \
                           f"{pod.metadata.name!r} failed - error: received status code {code}"
                return None
            if handler.HasField("sleep"):
                await self.clock.sleep(handler.sleep.seconds)
                return None
        except TimeoutError:
            return f"hook timed out after {timeout}s"
        except (OSError, CRIError, ValueError) as err:
            return str(err)
        return None
