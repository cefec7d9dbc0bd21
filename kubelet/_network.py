"""The two network actions probes and lifecycle hooks take: an HTTP GET and
a TCP connect, to the pod's IP (or a `host` the spec names).

`RealNetwork` opens real sockets (a small HTTP/1.1 client on asyncio, so a
probe costs no thread and honours its timeout exactly). Hollow nodes use
the hollow runtime instead, which answers from its container scripts: a
hollow pod's IP is not a real address, and nothing may be sent there.

Both take the pod and container names so a hollow runtime can find the
script; the real one ignores them.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol
from urllib.parse import urlsplit

USER_AGENT = "kube-probe/1.31"


class Network(Protocol):
    async def http_get(self, pod: str, container: str, url: str, headers: list[tuple[str, str]],
                       timeout: float) -> int:
        """The response's status code; raises OSError/TimeoutError when none came."""
        ...

    async def tcp_connect(self, pod: str, container: str, host: str, port: int, timeout: float) -> None:
        """Returns once connected; raises OSError/TimeoutError otherwise."""
        ...


class RealNetwork:
    async def http_get(self, pod: str, container: str, url: str, headers: list[tuple[str, str]],
                       timeout: float) -> int:
        return await asyncio.wait_for(self._get(url, headers), timeout)

    async def _get(self, url: str, headers: list[tuple[str, str]]) -> int:
        parts = urlsplit(url)
        https = parts.scheme.lower() == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        context = None
        if https:  # probes do not verify certificates, as Kubernetes' do not
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            names = {name.lower() for name, _ in headers}
            lines = [f"GET {target} HTTP/1.1"]
            if "host" not in names:
                lines.append(f"Host: {parts.netloc}")
            if "user-agent" not in names:
                lines.append(f"User-Agent: {USER_AGENT}")
            if "accept" not in names:
                lines.append("Accept: */*")
            lines += [f"{name}: {value}" for name, value in headers]
            lines.append("Connection: close")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            status = (await reader.readline()).decode("latin-1").split()
            if len(status) < 2 or not status[1].isdigit():
                raise ConnectionError(f"malformed HTTP response from {url}: {' '.join(status)!r}")
            return int(status[1])
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass

    async def tcp_connect(self, pod: str, container: str, host: str, port: int, timeout: float) -> None:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
