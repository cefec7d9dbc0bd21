"""Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox and status.

A sandbox is a network namespace (/run/netns/klpod-<id>) wired by CNI, and a
pause container (runc id = the sandbox id) inside it holding the pod's IPC
and UTS namespaces (and PID namespace for containers that share it), with
the pod's hostname, resolv.conf and default /etc/hosts written beside it
for its containers to mount. hostNetwork pods skip the netns and CNI.

Run is all or nothing: a failure undoes what was done (CNI DEL releases the
IP). Stop kills the containers and the pause process, runs CNI DEL and
deletes the netns; running it twice is harmless, and a sandbox whose pause
process died reports NOTREADY so the kubelet makes a new one.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from typing import Any

from google.protobuf import json_format

from proto import cri_pb2

from . import _cni, _spec
from ._containers import Containers
from ._errors import CRIError, FailedPrecondition, InvalidArgument
from ._runtime import Runtime
from ._store import SandboxRecord

log = logging.getLogger(__name__)
PROTOCOLS = {cri_pb2.TCP: "tcp", cri_pb2.UDP: "udp", cri_pb2.SCTP: "sctp"}
_CGROUP = re.compile(r"^[A-Za-z0-9_.\-/]*$")


def _etc_files(config: cri_pb2.PodSandboxConfig) -> dict[str, str]:
    hostname = config.hostname or config.metadata.name
    dns = config.dns_config
    resolv = "".join(f"nameserver {s}\n" for s in dns.servers)
    if dns.searches:
        resolv += f"search {' '.join(dns.searches)}\n"
    if dns.options:
        resolv += f"options {' '.join(dns.options)}\n"
    hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
             "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
    return {"hostname": hostname + "\n", "resolv.conf": resolv, "hosts": hosts}


def _validate(config: cri_pb2.PodSandboxConfig) -> None:
    meta = config.metadata
    for field in ("name", "namespace", "uid"):
        if not getattr(meta, field):
            raise InvalidArgument(f"config.metadata.{field}: Required value")
    for i, pm in enumerate(config.port_mappings):
        if not 0 < pm.container_port < 65536:
            raise InvalidArgument(f"config.portMappings[{i}].containerPort: Invalid value: {pm.container_port}: "
                                  "must be between 1 and 65535")
        if not 0 <= pm.host_port < 65536:
            raise InvalidArgument(f"config.portMappings[{i}].hostPort: Invalid value: {pm.host_port}: "
                                  "must be between 0 and 65535")
    parent = config.linux.cgroup_parent
    if not _CGROUP.match(parent) or ".." in parent.split("/"):
        raise InvalidArgument(f"config.linux.cgroupParent: Invalid value: {parent!r}: must be a plain cgroup path")


class Sandboxes:
    def __init__(self, runtime: Runtime, containers: Containers) -> None:
        self.rt = runtime
        self.containers = containers

    async def run(self, config: cri_pb2.PodSandboxConfig) -> str:
        _validate(config)
        host_network = config.linux.security_context.namespace_options.network == cri_pb2.NODE
        conflist = None
        if not host_network:
            conflist = self.rt.conflist()
            if conflist is None:
                raise FailedPrecondition("the network is not ready: no pod CIDR yet (UpdateRuntimeConfig "
                                         "with the node's spec.podCIDR) and no CNI config in --cni-conf-dir")
        image = self.rt.images.find(self.rt.options.pod_infra_image)
        if image is None:
            image = await self.rt.images.pull(self.rt.options.pod_infra_image)
        sandbox_id = secrets.token_hex(32)
        directory = self.rt.store.sandbox_dir(sandbox_id)
        (directory / "pause").mkdir(parents=True)
        for name, text in _etc_files(config).items():
            (directory / name).write_text(text)
        rec = SandboxRecord(id=sandbox_id, config=json_format.MessageToDict(config), created_at=self.rt.clock(),
                            cgroup_parent=config.linux.cgroup_parent.strip("/") or f"pod{config.metadata.uid}")
        pod = None
        try:
            if conflist is not None:
                rec.netns = f"klpod-{sandbox_id[:16]}"
                pod = self._pod_network(rec, config)
                await _cni.create_netns(rec.netns)
                rec.cni_conflist = conflist
                rec.cni_result = await self.rt.cni.add(conflist, pod)
                rec.ip, rec.additional_ips = _cni.pod_ip(rec.cni_result)
            spaces: list[dict[str, str]] = [{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "pid"}]
            if rec.netns:
                spaces.append({"type": "network", "path": f"/run/netns/{rec.netns}"})
            sysctls = dict(config.linux.sysctls)
            proc = _spec.Process(_spec.process_args(cri_pb2.ContainerConfig(), image.config, "pod infra image"),
                                 [_spec.DEFAULT_PATH], "/", 65535, 65535)
            spec = _spec.runtime_spec(
                proc, mounts=_spec.base_mounts(directory, True)[:6], namespaces=spaces,
                cgroups_path=self.rt.cgroups_path(rec, sandbox_id),
                resources={"devices": [{"allow": False, "access": "rwm"}], "cpu": {"shares": 2}},
                caps=[], hostname="" if host_network else (config.hostname or config.metadata.name),
                readonly_rootfs=True, no_new_privs=True, oom_score_adj=-998, sysctls=sysctls)
            launched = await self.rt.launch(sandbox_id, directory / "pause", spec,
                                            self.rt.images.layer_dirs(image), str(directory / "pause" / "pause.log"))
            await self.rt.runc.start(sandbox_id)
            rec.pause_pid = launched.pid
            (directory / "pause" / "monitor.pid").write_text(str(launched.monitor_pid))
            self.rt.store.save_sandbox(rec)
        except BaseException:
            await self._teardown(rec, pod)
            shutil.rmtree(directory, ignore_errors=True)
            raise
        log.info("pod sandbox %s (%s/%s) ready at %s", sandbox_id[:12], config.metadata.namespace,
                 config.metadata.name, rec.ip or "the node's network")
        return sandbox_id

    def _pod_network(self, rec: SandboxRecord, config: cri_pb2.PodSandboxConfig) -> _cni.PodNetwork:
        ports = tuple({"hostPort": pm.host_port, "containerPort": pm.container_port,
                       "protocol": PROTOCOLS[pm.protocol], "hostIP": pm.host_ip}
                      for pm in config.port_mappings if pm.host_port)
        meta = config.metadata
        return _cni.PodNetwork(rec.id, f"/run/netns/{rec.netns}", meta.namespace, meta.name, meta.uid, ports)

    def _monitor_pid(self, rec: SandboxRecord) -> int:
        try:
            return int((self.rt.store.sandbox_dir(rec.id) / "pause" / "monitor.pid").read_text())
        except (OSError, ValueError):
            return 0

    async def _teardown(self, rec: SandboxRecord, pod: _cni.PodNetwork | None) -> None:
        """Kill the pause process, release the IP, delete the netns; every step runs even if one fails."""
        first: CRIError | None = None
        pause = self.rt.store.sandbox_dir(rec.id) / "pause"
        try:
            await self.rt.kill(rec.id, pause, self._monitor_pid(rec), "SIGKILL", 0)
        except CRIError as err:
            first = err
        if pod is not None and rec.cni_conflist:
            try:
                await self.rt.cni.delete(rec.cni_conflist, pod, rec.cni_result or None)
            except CRIError as err:
                first = first or err
        if rec.netns:
            try:
                await _cni.delete_netns(rec.netns)
            except CRIError as err:
                first = first or err
        await self.rt.runc.delete(rec.id)
        self.rt.cleanup_dir(pause / "rootfs")
        if first is not None:
            raise first

    async def stop(self, sandbox_id: str) -> None:
        rec = self.rt.find_sandbox(sandbox_id)
        async with self.rt.lock(rec.id):
            for container in list(self.rt.store.containers.values()):
                if container.sandbox_id == rec.id:
                    await self.containers.stop(container.id, 0)
            config = json_format.ParseDict(rec.config, cri_pb2.PodSandboxConfig())
            pod = self._pod_network(rec, config) if rec.netns else None
            rec.ready = False
            self.rt.store.save_sandbox(rec)
            await self._teardown(rec, pod)
            if rec.netns:
                log.info("pod sandbox %s stopped; released %s", rec.id[:12], rec.ip)

    async def remove(self, sandbox_id: str) -> None:
        rec = self.rt.store.sandboxes.get(sandbox_id)
        if rec is None:
            return
        if rec.ready:
            await self.stop(rec.id)
        for container in list(self.rt.store.containers.values()):
            if container.sandbox_id == rec.id:
                await self.containers.remove(container.id)
        await self.rt.runc.delete(rec.id)
        self.rt.cleanup_dir(self.rt.store.sandbox_dir(rec.id) / "pause" / "rootfs")
        shutil.rmtree(self.rt.store.sandbox_dir(rec.id), ignore_errors=True)
        self.rt.store.sandboxes.pop(rec.id, None)

    async def state(self, rec: SandboxRecord) -> cri_pb2.PodSandboxState:
        if not rec.ready:
            return cri_pb2.SANDBOX_NOTREADY
        pause = self.rt.store.sandbox_dir(rec.id) / "pause"
        state, _ = await self.rt._state(rec.id, pause, self._monitor_pid(rec), True)
        return cri_pb2.SANDBOX_READY if state == "running" else cri_pb2.SANDBOX_NOTREADY

    async def status(self, sandbox_id: str) -> cri_pb2.PodSandboxStatus:
        rec = self.rt.find_sandbox(sandbox_id)
        config = json_format.ParseDict(rec.config, cri_pb2.PodSandboxConfig())
        opts = config.linux.security_context.namespace_options
        return cri_pb2.PodSandboxStatus(
            id=rec.id, metadata=config.metadata, state=await self.state(rec), created_at=rec.created_at,
            network=cri_pb2.PodSandboxNetworkStatus(
                ip=rec.ip, additional_ips=[cri_pb2.PodIP(ip=ip) for ip in rec.additional_ips]),
            linux=cri_pb2.LinuxPodSandboxStatus(namespaces=cri_pb2.Namespace(options=opts)),
            labels=config.labels, annotations=config.annotations)

    async def list(self, flt: cri_pb2.PodSandboxFilter | None) -> list[cri_pb2.PodSandbox]:
        out = []
        for rec in list(self.rt.store.sandboxes.values()):
            config = json_format.ParseDict(rec.config, cri_pb2.PodSandboxConfig())
            if flt is not None:
                if flt.id and not rec.id.startswith(flt.id):
                    continue
                if not all(config.labels.get(k) == v for k, v in flt.label_selector.items()):
                    continue
            state = await self.state(rec)
            if flt is not None and flt.HasField("state") and flt.state.state != state:
                continue
            out.append(cri_pb2.PodSandbox(id=rec.id, metadata=config.metadata, state=state,
                                          created_at=rec.created_at, labels=config.labels,
                                          annotations=config.annotations))
        return out


def info(rec: SandboxRecord) -> dict[str, Any]:
    return {"netns": rec.netns, "pausePid": rec.pause_pid, "cgroupParent": rec.cgroup_parent}
