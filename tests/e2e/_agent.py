"""Client pods: requests sent from inside the cluster, one pod per node.

The flows say "from a client pod on each node", and ask for hundreds of
requests per client and for requests without pause while the test acts
(a rollout, a node's death). One `kubelab exec` per request would be a
process, an apiserver stream and a runc exec each; a load that outlives
the command that started it would need a stream held open meanwhile. So
each client pod is busybox running `httpd` with a few CGI scripts, and the
test calls them over HTTP at the pod's IP from the pod's node namespace;
the scripts then do the real work *inside the pod*: its network
namespace, its pod IP as the source address, its resolv.conf (so DNS
names go through the cluster DNS and the pod's search path, as an
application's would). This is the idea of agnhost's `netexec /dial`,
which Kubernetes' own network e2e tests use, on the only tools our
busybox image has.

CGI scripts, and the test calls
them over HTTP at the pod's IP from the pod's node namespace; the scripts
then do the real work *inside the pod*: its network namespace, its pod IP
as the source address, its resolv.conf (so DNS names go through the
cluster DNS and the pod's search path, as an application's would). This
is the idea of agnhost's `netexec /dial`, which Kubernetes' own network
e2e tests use, on the only tools our busybox image has.

CGI scripts (`/cgi-bin/<name>?<query>`), all plain text, one line per
request made:

* `get?target=HOST[:PORT]&path=P&n=N` - N requests to http://HOST/P one
  after the other, each `ok <body>` or `fail <exit code> <wget's error>`;
* `load?id=X&target=...&path=...` - start requests without pause in the
  background until `stop?id=X`, which waits for the last one to finish and
  answers the whole record (same line format);
* `whoami` - the caller's address as this pod saw it (to check pod-to-pod
  traffic is not NATed);
* `resolve?name=N` - `nslookup N` through the pod's resolv.conf.

Every request inside the pod runs under `timeout 5` (busybox wget has no
-T here), so a dead path shows up as `fail 143` rather than a hang. A call
to the agent itself that fails raises AgentError naming the pod and script.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._lab import Lab

AGENT_PORT = 8081
REQUEST_TIMEOUT = 5

# Query parameters are URL-encoded by the test; `q` decodes them as the
# test server's handler does (busybox printf %b on \xHH escapes).
_QUERY = r"""q() {
    printf '%s' "$QUERY_STRING" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1 \
        | sed 's/+/ /g; s/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g' | { IFS= read -r v; printf '%b' "$v"; }
}
"""

_ONE_REQUEST = f"""one() {{
    out=$(timeout {REQUEST_TIMEOUT} wget -qO- "$1" 2>&1)
    rc=$?
    out=$(printf '%s' "$out" | tr '\\n' ' ')
    if [ $rc -eq 0 ]; then echo "ok $out"; else echo "fail $rc $out"; fi
}}
"""

SCRIPTS = {
    "get": _QUERY + _ONE_REQUEST + r"""printf 'Content-Type: text/plain\r\n\r\n'
url="http://$(q target)/$(q path)"
n=$(q n)
i=0
while [ "$i" -lt "${n:-1}" ]; do
    one "$url"
    i=$((i + 1))
done
""",
    "load": _QUERY + r"""printf 'Content-Type: text/plain\r\n\r\n'
id=$(q id)
rm -f "/tmp/load-$id" "/tmp/load-$id.stop" "/tmp/load-$id.done"
setsid sh /www/loop "http://$(q target)/$(q path)" "/tmp/load-$id" </dev/null >/dev/null 2>&1 &
echo started
""",
    "stop": _QUERY + r"""printf 'Content-Type: text/plain\r\n\r\n'
log="/tmp/load-$(q id)"
touch "$log.stop"
i=0
while [ ! -e "$log.done" ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cat "$log"
""",
    "whoami": r"""printf 'Content-Type: text/plain\r\n\r\n%s\n' "$REMOTE_ADDR"
""",
    "resolve": _QUERY + r"""printf 'Content-Type: text/plain\r\n\r\n'
nslookup "$(q name)" 2>&1
""",
}

# The background loop `load` starts: one request after another, no pause.
LOOP = _ONE_REQUEST + r"""url=$1 log=$2
while [ ! -e "$log.stop" ]; do one "$url"; done >> "$log"
touch "$log.done"
"""


def _startup_script() -> str:
    """The container's command: write the scripts, then serve them."""
    parts = ["set -e", "mkdir -p /www/cgi-bin"]
    for name, body in {**{f"cgi-bin/{k}": "#!/bin/sh\n" + v for k, v in SCRIPTS.items()}, "loop": LOOP}.items():
        parts.append(f"cat > /www/{name} <<'KUBELAB_E2E_EOF'\n{body}KUBELAB_E2E_EOF")
    parts.append("chmod +x /www/cgi-bin/*")
    parts.append(f"exec httpd -f -p {AGENT_PORT} -h /www")
    return "\n".join(parts) + "\n"


def daemonset(name: str = "client") -> dict[str, object]:
    """A DaemonSet of agents: one client pod on every node."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "agent", "image": "busybox", "command": ["sh", "-c", _startup_script()],
                    "ports": [{"containerPort": AGENT_PORT, "name": "agent"}],
                    "readinessProbe": {"tcpSocket": {"port": AGENT_PORT}, "periodSeconds": 1},
                }]}}}}


class AgentError(RuntimeError):
    pass


@dataclass(frozen=True)
class Reply:
    ok: bool
    body: str       # the response body, or the exit code and wget's error

    @classmethod
    def parse(cls, line: str) -> Reply:
        status, _, rest = line.partition(" ")
        if status not in ("ok", "fail"):
            raise AgentError(f"unexpected line from an agent: {line!r}")
        return cls(status == "ok", rest.strip())

    @property
    def refused(self) -> bool:
        return not self.ok and "Connection refused" in self.body


def tally(replies: list[Reply]) -> Counter[str]:
    """Answers per backend (the test server answers its pod's name); all
    failures count under the key "<failed>"."""
    return Counter(r.body if r.ok else "<failed>" for r in replies)


@dataclass(frozen=True)
class Agent:
    """One client pod: where it runs, and its scripts."""

    lab: Lab
    pod: str
    ip: str
    node: str

    def call(self, script: str, timeout: float = 120.0, **params: str | int) -> str:
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        url = f"http://{self.ip}:{AGENT_PORT}/cgi-bin/{script}?{query}"
        ok, body = self.lab.fetch(self.node, url, timeout=timeout)
        if not ok:
            raise AgentError(f"client pod {self.pod} on {self.node}: {script} failed: {body}")
        return body

    def get(self, target: str, path: str = "", n: int = 1) -> list[Reply]:
        """n requests from this pod to http://target/path, in order."""
        lines = self.call("get", timeout=30 + n * REQUEST_TIMEOUT, target=target, path=path, n=n).splitlines()
        replies = [Reply.parse(line) for line in lines if line.strip()]
        if len(replies) != n:
            raise AgentError(f"client pod {self.pod}: asked for {n} requests, got {len(replies)} results")
        return replies

    def start_load(self, load_id: str, target: str, path: str = "") -> None:
        self.call("load", id=load_id, target=target, path=path)

    def stop_load(self, load_id: str) -> list[Reply]:
        return [Reply.parse(line) for line in self.call("stop", id=load_id).splitlines() if line.strip()]

    def whoami_seen_by(self, other: Agent) -> str:
        """This pod's address as `other` sees it, asking from this pod."""
        replies = self.get(f"{other.ip}:{AGENT_PORT}", "cgi-bin/whoami")
        if not replies[0].ok:
            raise AgentError(f"client pod {self.pod} could not reach {other.pod} at {other.ip}: {replies[0].body}")
        # busybox httpd listens on IPv6 and shows IPv4 peers v4-mapped: [::ffff:10.244.1.3]
        return replies[0].body.strip("[]").removeprefix("::ffff:")

    def resolve(self, name: str) -> str:
        return self.call("resolve", name=name)
