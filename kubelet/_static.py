"""Static pods: pods the kubelet runs from manifest files in
`--pod-manifest-path`, without the apiserver (how kubeadm runs a control
plane), each shown in the apiserver as a mirror pod.

The directory is read every `file_check_frequency` (20 s) and at start.
Each YAML/JSON file holds one Pod (several documents: one pod each). A pod
is named `<name>-<node>`, gets the `default` namespace when it has none,
is bound to this node, and has a uid that is a hash of the node and the
manifest, so an edited file is a new pod (the old one is killed and the
new one started) while an unchanged file keeps its pod across kubelet
restarts (and the running containers are adopted). The annotations
`kubernetes.io/config.source=file`, `config.hash` and `config.seen` say
where it came from; the mirror pod carries `kubernetes.io/config.mirror`.

A file that does not parse is skipped with a log line naming the file and
the error; the pods of the other files are unaffected. A file removed is a
pod removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from api import Clock, decode_manifest, load_documents, rfc3339
from proto import core_pb2

from . import _labels as labels
from ._images import pull_policy

log = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml", ".json")


def _defaults(pod: core_pb2.Pod) -> None:
    """What the apiserver would have defaulted, for fields the kubelet reads."""
    spec = pod.spec
    spec.restartPolicy = spec.restartPolicy or "Always"
    spec.dnsPolicy = spec.dnsPolicy or "ClusterFirst"
    if not spec.HasField("terminationGracePeriodSeconds"):
        spec.terminationGracePeriodSeconds = 30
    spec.schedulerName = spec.schedulerName or "default-scheduler"
    for c in list(spec.initContainers) + list(spec.containers):
        c.terminationMessagePath = c.terminationMessagePath or "/dev/termination-log"
        c.terminationMessagePolicy = c.terminationMessagePolicy or "File"
        c.imagePullPolicy = pull_policy(c)
        for p in c.ports:
            p.protocol = p.protocol or "TCP"


def read_manifests(directory: Path, node_name: str, now: float) -> list[core_pb2.Pod]:
    pods: list[core_pb2.Pod] = []
    if not directory.is_dir():
        return pods
    for path in sorted(directory.iterdir()):
        if path.suffix not in SUFFIXES or path.name.startswith("."):
            continue
        try:
            text = path.read_text()
            for doc in load_documents(text):
                if not doc:
                    continue
                obj = decode_manifest(doc)
                if not isinstance(obj, core_pb2.Pod):
                    raise ValueError(f"kind {type(obj).__name__}: a static pod manifest must be a Pod")
                pods.append(static_pod(obj, node_name, now, f"{path}\n{text}"))
        except Exception as err:  # any parse or decode failure is the file's, never the kubelet's
            log.warning("static pod manifest %s: %s", path, err)
    return pods


def static_pod(pod: core_pb2.Pod, node_name: str, now: float, source: str) -> core_pb2.Pod:
    meta = pod.metadata
    if not meta.name:
        raise ValueError("metadata.name: Required value")
    digest = hashlib.sha256(f"{node_name}\n{source}".encode()).hexdigest()
    meta.name = f"{meta.name}-{node_name}"
    meta.namespace = meta.namespace or "default"
    meta.uid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    meta.annotations[labels.CONFIG_SOURCE] = "file"
    meta.annotations[labels.CONFIG_HASH] = digest[:32]
    meta.annotations[labels.CONFIG_SEEN] = rfc3339(now)
    pod.spec.nodeName = node_name
    _defaults(pod)
    pod.status.phase = pod.status.phase or "Pending"
    return pod


class StaticPodSource:
    def __init__(self, directory: Path, node_name: str, clock: Clock,
                 deliver: Callable[[list[core_pb2.Pod]], None], frequency: float = 20.0) -> None:
        self.directory = directory
        self.node_name = node_name
        self.clock = clock
        self.deliver = deliver
        self.frequency = frequency
        self._seen: dict[str, core_pb2.Pod] = {}

    def scan(self) -> None:
        pods = read_manifests(self.directory, self.node_name, self.clock.now())
        # keep the first-seen time of pods that did not change
        for p in pods:
            old = self._seen.get(p.metadata.uid)
            if old is not None:
                p.metadata.annotations[labels.CONFIG_SEEN] = old.metadata.annotations[labels.CONFIG_SEEN]
        self._seen = {p.metadata.uid: p for p in pods}
        self.deliver(pods)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.clock.sleep(self.frequency)
            try:
                self.scan()
            except OSError as err:
                log.warning("static pods in %s: %s", self.directory, err)
