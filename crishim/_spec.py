"""OCI runtime specs (config.json) for the pause container and app containers.

CRI semantics decide the process: `command` replaces the image's Entrypoint,
`args` replace its Cmd; env is the image's, overridden by the container's;
the user comes from runAsUser/runAsGroup, else the image's User, resolved in
the image's own /etc/passwd and /etc/group. An app container joins its
sandbox's network namespace (the pinned /run/netns path) and the pause
process's IPC and UTS namespaces (/proc/<pause pid>/ns/...); its PID
namespace follows namespace_options.pid. Resources become cgroup limits
(cpu shares/quota/period, memory limit with no extra swap, pids). Bad input
raises InvalidArgument naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proto import cri_pb2

from ._errors import InvalidArgument

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                "CAP_KILL", "CAP_AUDIT_WRITE"]
ALL_CAPS = ["CAP_" + c for c in (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE "
    "NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT "
    "SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ").split()]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
PROPAGATION = {cri_pb2.PROPAGATION_PRIVATE: "rprivate", cri_pb2.PROPAGATION_HOST_TO_CONTAINER: "rslave",
               cri_pb2.PROPAGATION_BIDIRECTIONAL: "rshared"}


@dataclass
class Process:
    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
    tty: bool = False


def process_args(config: cri_pb2.ContainerConfig, image: dict[str, Any], what: str) -> list[str]:
    entrypoint = list(config.command) or list(image.get("Entrypoint") or [])
    cmd = list(config.args) if (config.args or config.command) else list(image.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise InvalidArgument(f"{what}: command: Required value: the image has no Entrypoint or Cmd, "
                              "so the container needs a command")
    return args


def environment(config: cri_pb2.ContainerConfig, image: dict[str, Any], hostname: str) -> list[str]:
    env: dict[str, str] = {}
    for item in [*(image.get("Env") or []), f"HOSTNAME={hostname}"]:
        key, _, value = str(item).partition("=")
        env[key] = value
    for kv in config.envs:
        if not kv.key or "=" in kv.key:
            raise InvalidArgument(f"envs: Invalid value: {kv.key!r}: a variable name must be non-empty "
                                  "and must not contain '='")
        env[kv.key] = kv.value
    env.setdefault("PATH", DEFAULT_PATH.split("=", 1)[1])
    return [f"{k}={v}" for k, v in env.items()]


def _find(layers: list[Path], rel: str) -> Path | None:
    for layer in layers:
        if (layer / rel).is_file():
            return layer / rel
    return None


def _table(layers: list[Path], rel: str) -> list[list[str]]:
    path = _find(layers, rel)
    if path is None:
        return []
    return [line.split(":") for line in path.read_text(errors="replace").splitlines() if line and line[0] != "#"]


def resolve_user(spec: str, uid: int | None, gid: int | None, username: str,
                 layers: list[Path], what: str) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary gids) for a container, like Docker does it."""
    user, _, group = (username or spec).partition(":")
    passwd = _table(layers, "etc/passwd")
    if uid is None:
        if not user:
            uid = 0
        elif user.isdigit():
            uid = int(user)
        else:
            found = [row for row in passwd if row[0] == user and len(row) > 3]
            if not found:
                raise InvalidArgument(f"{what}: user {user!r} not found in the image's /etc/passwd")
            uid = int(found[0][2])
            if gid is None and not group:
                gid = int(found[0][3])
    if gid is None:
        if group.isdigit():
            gid = int(group)
        elif group:
            found = [row for row in _table(layers, "etc/group") if row[0] == group and len(row) > 2]
            if not found:
                raise InvalidArgument(f"{what}: group {group!r} not found in the image's /etc/group")
            gid = int(found[0][2])
        else:
            rows = [row for row in passwd if len(row) > 3 and row[2] == str(uid)]
            gid = int(rows[0][3]) if rows else 0
    name = next((row[0] for row in passwd if len(row) > 2 and row[2] == str(uid)), "")
    extra = [int(row[2]) for row in _table(layers, "etc/group")
             if len(row) > 3 and name and name in row[3].split(",") and row[2].isdigit()]
    return uid, gid, sorted(set(extra) - {gid})


def capabilities(sc: cri_pb2.LinuxContainerSecurityContext) -> list[str]:
    if sc.privileged:
        return list(ALL_CAPS)

    def norm(name: str) -> str:
        name = name.upper()
        return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"

    caps = list(DEFAULT_CAPS)
    drops = {norm(c) for c in sc.capabilities.drop_capabilities}
    if "ALL" in drops:
        caps = []
    caps = [c for c in caps if c not in drops]
    for add in map(norm, sc.capabilities.add_capabilities):
        if add == "ALL":
            caps = list(ALL_CAPS)
        elif add not in ALL_CAPS:
            raise InvalidArgument(f"linux.securityContext.capabilities.add: Unsupported value: {add!r}")
        elif add not in caps:
            caps.append(add)
    return caps


def base_mounts(sandbox_dir: Path, etc_hosts: bool) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    files = ["hostname", "resolv.conf"] + (["hosts"] if etc_hosts else [])
    for name in files:
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": str(sandbox_dir / name),
                       "options": ["rbind", "rprivate", "rw"]})
    return mounts


def volume_mounts(config: cri_pb2.ContainerConfig) -> list[dict[str, Any]]:
    out = []
    for i, m in enumerate(config.mounts):
        if not m.container_path.startswith("/"):
            raise InvalidArgument(f"mounts[{i}].containerPath: Invalid value: {m.container_path!r}: "
                                  "must be an absolute path")
        if not m.host_path.startswith("/"):
            raise InvalidArgument(f"mounts[{i}].hostPath: Invalid value: {m.host_path!r}: must be an absolute path")
        source = Path(m.host_path)
        if not source.exists():
            source.mkdir(parents=True)
        options = ["rbind", PROPAGATION.get(m.propagation, "rprivate"), "ro" if m.readonly else "rw"]
        out.append({"destination": m.container_path, "type": "bind", "source": m.host_path, "options": options})
    return out


def resources(res: cri_pb2.LinuxContainerResources, what: str) -> dict[str, Any]:
    for name in ("cpu_period", "cpu_quota", "cpu_shares", "memory_limit_in_bytes", "pids_limit"):
        if getattr(res, name) < 0 and not (name in ("cpu_quota", "pids_limit") and getattr(res, name) == -1):
            raise InvalidArgument(f"{what}.linux.resources.{name}: Invalid value: {getattr(res, name)}: "
                                  "must be greater than or equal to 0")
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    cpu: dict[str, Any] = {}
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.cpu_quota:
        cpu["quota"] = res.cpu_quota
    if res.cpu_period:
        cpu["period"] = res.cpu_period
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    if res.cpuset_mems:
        cpu["mems"] = res.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if res.memory_limit_in_bytes:
        out["memory"] = {"limit": res.memory_limit_in_bytes, "swap": res.memory_limit_in_bytes}
    if res.pids_limit:
        out["pids"] = {"limit": res.pids_limit}
    return out


CAP_SYS_RESOURCE = 24


def allowed_oom_score_adj(requested: int) -> int:
    """The score to ask for: lowering it below the shim's own needs
    CAP_SYS_RESOURCE, which some hosts (nested containers) withhold; then
    the container gets the shim's score rather than failing to start."""
    try:
        own = int(Path("/proc/self/oom_score_adj").read_text())
        caps = next(int(line.split()[1], 16) for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("CapEff:"))
    except (OSError, ValueError, StopIteration):
        return requested
    if requested < own and not caps & (1 << CAP_SYS_RESOURCE):
        return own
    return requested


def runtime_spec(proc: Process, *, mounts: list[dict[str, Any]], namespaces: list[dict[str, str]],
                 cgroups_path: str, resources: dict[str, Any], caps: list[str], hostname: str = "",
                 readonly_rootfs: bool = False, privileged: bool = False, no_new_privs: bool = False,
                 oom_score_adj: int | None = None, sysctls: dict[str, str] | None = None) -> dict[str, Any]:
    process: dict[str, Any] = {
        "terminal": proc.tty, "user": {"uid": proc.uid, "gid": proc.gid, "additionalGids": proc.groups},
        "args": proc.args, "env": proc.env, "cwd": proc.cwd or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": no_new_privs,
    }
    if oom_score_adj is not None:
        process["oomScoreAdj"] = allowed_oom_score_adj(oom_score_adj)
    linux: dict[str, Any] = {"namespaces": namespaces, "cgroupsPath": cgroups_path, "resources": resources,
                             "sysctl": sysctls or {}}
    if privileged:
        resources["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        linux["maskedPaths"] = MASKED
        linux["readonlyPaths"] = READONLY
    spec: dict[str, Any] = {"ociVersion": "1.0.2", "process": process,
                            "root": {"path": "rootfs", "readonly": readonly_rootfs},
                            "mounts": mounts, "linux": linux}
    if hostname:
        spec["hostname"] = hostname
    return spec
