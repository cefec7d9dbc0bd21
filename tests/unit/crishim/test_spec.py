"""Runtime specs: CRI command/args over the image's Entrypoint/Cmd, env
overrides, users from the image's /etc/passwd, capabilities, resources,
the built-in CNI network and the shim's flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from crishim import _cni, _spec
from crishim.__main__ import build_parser, options_from, quantity
from crishim._errors import InvalidArgument
from proto import cri_pb2

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["serve", "--port=80"], "Env": ["PATH=/bin", "A=image"]}


@pytest.mark.parametrize(("command", "args", "expected"), [
    ([], [], ["/entry", "serve", "--port=80"]),
    (["/bin/sh"], [], ["/bin/sh"]),
    ([], ["other"], ["/entry", "other"]),
    (["/bin/sh"], ["-c", "x"], ["/bin/sh", "-c", "x"]),
])
def test_command_replaces_entrypoint_and_args_replace_cmd(command: list[str], args: list[str],
                                                          expected: list[str]) -> None:
    config = cri_pb2.ContainerConfig(command=command, args=args)
    assert _spec.process_args(config, IMAGE, "c") == expected


def test_no_command_anywhere_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="command: Required value"):
        _spec.process_args(cri_pb2.ContainerConfig(), {}, 'container "c"')


def test_container_env_overrides_the_image() -> None:
    config = cri_pb2.ContainerConfig(envs=[cri_pb2.KeyValue(key="A", value="pod"), cri_pb2.KeyValue(key="B",
                                                                                                   value="x=y")])
    assert _spec.environment(config, IMAGE, "web") == ["PATH=/bin", "A=pod", "HOSTNAME=web", "B=x=y"]
    with pytest.raises(InvalidArgument, match="envs"):
        _spec.environment(cri_pb2.ContainerConfig(envs=[cri_pb2.KeyValue(key="A=B")]), {}, "web")


def test_users_resolve_in_the_image(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\napp:x:1001:\nextra:x:2000:app\nstaff:x:50:\n")
    layers = [tmp_path]
    assert _spec.resolve_user("", None, None, "", layers, "c") == (0, 0, [])
    assert _spec.resolve_user("app", None, None, "", layers, "c") == (1000, 1001, [2000])
    assert _spec.resolve_user("app:staff", None, None, "", layers, "c") == (1000, 50, [2000])
    assert _spec.resolve_user("1000", None, None, "", layers, "c") == (1000, 1001, [2000])
    assert _spec.resolve_user("app", 42, 43, "", layers, "c") == (42, 43, [])
    with pytest.raises(InvalidArgument, match="user 'nobody' not found"):
        _spec.resolve_user("nobody", None, None, "", layers, "c")


def test_capabilities_add_and_drop() -> None:
    sc = cri_pb2.LinuxContainerSecurityContext(capabilities=cri_pb2.Capability(
        add_capabilities=["NET_ADMIN"], drop_capabilities=["KILL"]))
    caps = _spec.capabilities(sc)
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps and "CAP_CHOWN" in caps
    only = _spec.capabilities(cri_pb2.LinuxContainerSecurityContext(capabilities=cri_pb2.Capability(
        add_capabilities=["NET_BIND_SERVICE"], drop_capabilities=["ALL"])))
    assert only == ["CAP_NET_BIND_SERVICE"]
    with pytest.raises(InvalidArgument, match="Unsupported value"):
        _spec.capabilities(cri_pb2.LinuxContainerSecurityContext(capabilities=cri_pb2.Capability(
            add_capabilities=["FLY"])))


def test_resources_become_cgroup_limits() -> None:
    res = cri_pb2.LinuxContainerResources(cpu_shares=512, cpu_quota=50000, cpu_period=100000,
                                          memory_limit_in_bytes=64 << 20, pids_limit=100)
    out = _spec.resources(res, "c")
    assert out["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}
    assert out["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert out["pids"] == {"limit": 100}
    with pytest.raises(InvalidArgument, match="memory_limit_in_bytes: Invalid value: -1"):
        _spec.resources(cri_pb2.LinuxContainerResources(memory_limit_in_bytes=-1), "c")


def test_builtin_network_and_conf_dir_template(tmp_path: Path) -> None:
    conf = _cni.builtin_conflist("10.244.1.0/24", tmp_path / "ipam")
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap"]
    assert conf["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    (tmp_path / "10-net.conf").write_text('{"cniVersion": "1.0.0", "name": "n", "type": "bridge", '
                                          '"ipam": {"type": "host-local", "subnet": "{{.PodCIDR}}"}}')
    loaded = _cni.load_conflist(tmp_path, "10.9.0.0/16")
    assert loaded is not None and loaded["plugins"][0]["ipam"]["subnet"] == "10.9.0.0/16"
    assert _cni.pod_ip({"ips": [{"address": "10.9.0.5/16"}, {"address": "fd00::5/64"}]}) == ("10.9.0.5", ["fd00::5"])


def test_flags() -> None:
    args = build_parser().parse_args(["--node-name", "node-1", "--container-log-max-size", "1Mi",
                                      "--listen", "unix:///run/kubelab/node-1/crishim.sock"])
    options = options_from(args)
    assert (options.cgroup_root, options.log_max_size, options.pod_infra_image) == (
        "/kubelab/node-1", 1 << 20, "registry.k8s.io/pause:3.10")
    assert quantity("10") == 10 and quantity("2Ki") == 2048
    with pytest.raises(Exception, match="invalid size"):
        quantity("ten")
