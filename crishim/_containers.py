"""Container lifecycle: CreateContainer, StartContainer, StopContainer,
RemoveContainer, and the state the kubelet reads back.

A container's state comes from files, never from memory: exit.json (by its
monitor) means EXITED with its code and reason (Completed for 0, OOMKilled
when the cgroup saw an OOM kill, Error otherwise); otherwise RUNNING once
started, CREATED before. So a shim restarted while containers ran reports
their later exits exactly. Calls on one container are serialised.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from proto import cri_pb2

from . import _spec
from ._errors import AlreadyExists, FailedPrecondition, InvalidArgument
from ._runtime import Runtime
from ._store import ContainerRecord

log = logging.getLogger(__name__)
STATES = {"created": cri_pb2.CONTAINER_CREATED, "running": cri_pb2.CONTAINER_RUNNING,
          "exited": cri_pb2.CONTAINER_EXITED}
MAX_MESSAGE = 4096


def _config(rec: ContainerRecord) -> cri_pb2.ContainerConfig:
    return json_format.ParseDict(rec.config, cri_pb2.ContainerConfig())


def _namespaces(sandbox_netns: str, pause_pid: int, opts: cri_pb2.NamespaceOption) -> list[dict[str, str]]:
    spaces = [{"type": "mount"}]
    if opts.network != cri_pb2.NODE and sandbox_netns:
        spaces.append({"type": "network", "path": f"/run/netns/{sandbox_netns}"})
        spaces.append({"type": "uts", "path": f"/proc/{pause_pid}/ns/uts"})
    if opts.ipc == cri_pb2.POD:
        spaces.append({"type": "ipc", "path": f"/proc/{pause_pid}/ns/ipc"})
    elif opts.ipc == cri_pb2.CONTAINER:
        spaces.append({"type": "ipc"})
    if opts.pid == cri_pb2.POD:
        spaces.append({"type": "pid", "path": f"/proc/{pause_pid}/ns/pid"})
    elif opts.pid == cri_pb2.CONTAINER:
        spaces.append({"type": "pid"})
    return spaces


class Containers:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def create(self, sandbox_id: str, config: cri_pb2.ContainerConfig) -> str:
        sandbox = self.rt.find_sandbox(sandbox_id)
        self.rt.check_sandbox_ready(sandbox)
        name = config.metadata.name
        if not name:
            raise InvalidArgument("config.metadata.name: Required value")
        what = f'container "{name}" in pod sandbox {sandbox.id[:12]}'
        for other in self.rt.store.containers.values():
            meta = other.config.get("metadata", {})
            if other.sandbox_id == sandbox.id and meta.get("name") == name \
                    and int(meta.get("attempt", 0)) == config.metadata.attempt:
                raise AlreadyExists(f"{what} attempt {config.metadata.attempt} already exists as {other.id[:12]}")
        if not config.image.image:
            raise InvalidArgument(f"{what}: image.image: Required value")
        image = self.rt.images.get(config.image.image)
        layers = self.rt.images.layer_dirs(image)
        sb_config = json_format.ParseDict(sandbox.config, cri_pb2.PodSandboxConfig())
        sc = config.linux.security_context
        uid = sc.run_as_user.value if sc.HasField("run_as_user") else None
        gid = sc.run_as_group.value if sc.HasField("run_as_group") else None
        user, group, groups = _spec.resolve_user(str(image.config.get("User") or ""), uid, gid, sc.run_as_username,
                                                 layers, what)
        groups = sorted(set(groups) | set(sc.supplemental_groups))
        proc = _spec.Process(_spec.process_args(config, image.config, what),
                             _spec.environment(config, image.config, sb_config.hostname or sb_config.metadata.name),
                             config.working_dir or str(image.config.get("WorkingDir") or "/"),
                             user, group, groups, config.tty)
        container_id = secrets.token_hex(32)
        bundle = self.rt.store.container_dir(container_id)
        bundle.mkdir(parents=True)
        try:
            sandbox_dir = self.rt.store.sandbox_dir(sandbox.id)
            has_hosts = any(m.container_path == "/etc/hosts" for m in config.mounts)
            mounts = [m for m in _spec.base_mounts(sandbox_dir, not has_hosts)
                      if not any(v.container_path == m["destination"] for v in config.mounts)]
            mounts += _spec.volume_mounts(config)
            termination_log = ""
            path = config.termination_message_path
            if path and not any(m.container_path == path for m in config.mounts):
                if not path.startswith("/"):
                    raise InvalidArgument(f"{what}: terminationMessagePath: Invalid value: {path!r}: "
                                          "must be an absolute path")
                termination_log = str(bundle / "termination-log")
                _touch(termination_log)
                mounts.append({"destination": path, "type": "bind", "source": termination_log,
                               "options": ["rbind", "rprivate", "rw"]})
            res = config.linux.resources
            spec = _spec.runtime_spec(
                proc, mounts=mounts, namespaces=_namespaces(sandbox.netns, sandbox.pause_pid, sc.namespace_options),
                cgroups_path=self.rt.cgroups_path(sandbox, container_id),
                resources=_spec.resources(res, what), caps=_spec.capabilities(sc),
                readonly_rootfs=sc.readonly_rootfs, privileged=sc.privileged, no_new_privs=sc.no_new_privs,
                oom_score_adj=res.oom_score_adj if res.oom_score_adj else None)
            log_path = ""
            if sb_config.log_directory and config.log_path:
                log_path = str(Path(sb_config.log_directory) / config.log_path)
            launched = await self.rt.launch(container_id, bundle, spec, layers,
                                            log_path or str(bundle / "container.log"), stdin=config.stdin,
                                            stdin_once=config.stdin_once)
        except BaseException:
            self.rt.cleanup_dir(bundle / "rootfs")
            shutil.rmtree(bundle, ignore_errors=True)
            raise
        rec = ContainerRecord(
            id=container_id, sandbox_id=sandbox.id, config=json_format.MessageToDict(config), image_id=image.id,
            image_ref=image.image_ref, image_name=config.image.image, created_at=self.rt.clock(),
            log_path=log_path, cgroups_path=spec["linux"]["cgroupsPath"],
            layers=[p.name for p in layers], stop_signal=str(image.config.get("StopSignal") or "SIGTERM"),
            pid=launched.pid, monitor_pid=launched.monitor_pid, termination_log=termination_log)
        self.rt.store.save_container(rec)
        log.info("created container %s (%s) in sandbox %s", container_id[:12], name, sandbox.id[:12])
        return container_id

    async def start(self, container_id: str) -> None:
        rec = self.rt.find_container(container_id)
        async with self.rt.lock(rec.id):
            state, _ = await self.rt.container_state(rec)
            if state != "created":
                raise FailedPrecondition(f'container "{rec.id}" is {state}, not created: it can start only once')
            started = self.rt.clock()   # before: a short-lived container may finish before runc start returns
            await self.rt.runc.start(rec.id)
            rec.started_at = started
            self.rt.store.save_container(rec)

    async def stop(self, container_id: str, timeout: int) -> None:
        rec = self.rt.find_container(container_id)
        async with self.rt.lock(rec.id):
            bundle = self.rt.store.container_dir(rec.id)
            await self.rt.kill(rec.id, bundle, rec.monitor_pid, rec.stop_signal, max(0, timeout))

    async def remove(self, container_id: str) -> None:
        """Remove a container (killing it first) and its logs; a missing one is not an error."""
        rec = self.rt.store.containers.get(container_id)
        if rec is None:
            return
        async with self.rt.lock(rec.id):
            await self.rt.destroy(rec.id, self.rt.store.container_dir(rec.id), rec.monitor_pid)
            if rec.log_path:
                log_file = Path(rec.log_path)
                for old in [log_file, *log_file.parent.glob(f"{log_file.name}.*")]:
                    old.unlink(missing_ok=True)
            self.rt.store.containers.pop(rec.id, None)

    async def status(self, container_id: str) -> cri_pb2.ContainerStatus:
        rec = self.rt.find_container(container_id)
        state, exit_status = await self.rt.container_state(rec)
        config = _config(rec)
        status = cri_pb2.ContainerStatus(
            id=rec.id, metadata=config.metadata, state=STATES[state], created_at=rec.created_at,
            started_at=rec.started_at, image=cri_pb2.ImageSpec(image=rec.image_name), image_ref=rec.image_ref,
            labels=config.labels, annotations=config.annotations, mounts=config.mounts, log_path=rec.log_path,
            resources=config.linux.resources)
        if exit_status is not None:
            status.finished_at = int(exit_status["finishedAt"])
            status.exit_code = int(exit_status["exitCode"])
            status.reason = _reason(exit_status)
            status.message = self._message(rec) or str(exit_status.get("message", ""))
            if not rec.started_at:
                status.started_at = 0
        return status

    def _message(self, rec: ContainerRecord) -> str:
        config = rec.config
        path = config.get("terminationMessagePath", "")
        source = rec.termination_log or next((m.get("hostPath", "") for m in config.get("mounts", [])
                                              if m.get("containerPath") == path and path), "")
        if not source:
            return ""
        try:
            with open(source, "rb") as fh:
                return fh.read(MAX_MESSAGE).decode(errors="replace")
        except OSError:
            return ""

    async def list(self, flt: cri_pb2.ContainerFilter | None) -> list[cri_pb2.Container]:
        out = []
        for rec in list(self.rt.store.containers.values()):
            if flt is not None:
                if flt.id and not rec.id.startswith(flt.id):
                    continue
                if flt.pod_sandbox_id and not rec.sandbox_id.startswith(flt.pod_sandbox_id):
                    continue
                if not _labels_match(rec.config.get("labels", {}), flt.label_selector):
                    continue
            state, _ = await self.rt.container_state(rec)
            if flt is not None and flt.HasField("state") and flt.state.state != STATES[state]:
                continue
            config = _config(rec)
            out.append(cri_pb2.Container(
                id=rec.id, pod_sandbox_id=rec.sandbox_id, metadata=config.metadata,
                image=cri_pb2.ImageSpec(image=rec.image_name), image_ref=rec.image_ref, state=STATES[state],
                created_at=rec.created_at, labels=config.labels, annotations=config.annotations))
        return out


def _touch(path: str) -> None:
    Path(path).touch()


def _reason(exit_status: dict[str, Any]) -> str:
    if exit_status.get("oomKilled"):
        return "OOMKilled"
    return "Completed" if int(exit_status["exitCode"]) == 0 else "Error"


def _labels_match(labels: dict[str, str], selector: Any) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
