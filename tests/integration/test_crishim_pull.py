"""PullImage over the OCI distribution protocol: a real docker-registry on
loopback inside a scratch netns, reached through hosts.toml mirrors, the
way the lab reaches its local registry for docker.io and registry.k8s.io
names. The pulled images then run: the pause image is pulled by
RunPodSandbox itself."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from proto import cri_pb2
from tests.support.crishim import (
    BUSYBOX,
    PAUSE,
    Shim,
    build_layout,
    container_config,
    require_tools,
    sandbox_config,
    scratch_netns,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(require_tools() is not None, reason=str(require_tools())),
              pytest.mark.skipif(subprocess.run(["which", "docker-registry"], capture_output=True).returncode != 0,
                                 reason="needs docker-registry")]
PORT = 5000   # loopback of the scratch netns: nothing else listens there


def _in(netns: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}", *argv]


@pytest.fixture
def registry_shim() -> Iterator[Shim]:
    with scratch_netns() as netns:
        base = Path(tempfile.mkdtemp(prefix="crishim-pull-"))
        config = base / "registry.yml"
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {base / 'registry'}\n"
                          f"http:\n  addr: 127.0.0.1:{PORT}\nlog:\n  level: warn\n")
        registry = subprocess.Popen(_in(netns, "docker-registry", "serve", str(config)),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        certs = base / "certs.d"
        for host in ("docker.io", "registry.k8s.io"):
            (certs / host).mkdir(parents=True)
            (certs / host / "hosts.toml").write_text(
                f'server = "https://{host}"\n[host."http://127.0.0.1:{PORT}"]\n'
                '  capabilities = ["pull", "resolve"]\n  skip_verify = true\n')
        (certs / f"127.0.0.1:{PORT}").mkdir()   # an insecure registry: plain http, no mirror
        (certs / f"127.0.0.1:{PORT}" / "hosts.toml").write_text(f'server = "http://127.0.0.1:{PORT}"\n')
        shim = Shim(netns, base, import_images=False, extra=("--registry-config-path", str(certs)))
        try:
            def listening() -> bool:
                probe = f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)"
                return subprocess.run(_in(netns, "python3", "-c", probe), capture_output=True).returncode == 0
            wait_for(listening, "docker-registry to listen")
            layout = build_layout(base / "layout")
            for ref, target in ((BUSYBOX, "library/busybox:1.28"), (PAUSE, "pause:3.10")):
                subprocess.run(_in(netns, "skopeo", "copy", "--insecure-policy", "-q", "--dest-tls-verify=false",
                                   f"oci:{layout.path}:{ref}", f"docker://127.0.0.1:{PORT}/{target}"), check=True)
            yield shim.start()
        finally:
            shim.cleanup()
            registry.terminate()
            registry.wait()


def test_pull_through_a_hosts_toml_mirror_then_run(registry_shim: Shim) -> None:
    shim = registry_shim
    assert shim.images.ImageStatus(cri_pb2.ImageStatusRequest(image=cri_pb2.ImageSpec(image="busybox:1.28"))) \
        == cri_pb2.ImageStatusResponse()
    ref = shim.images.PullImage(cri_pb2.PullImageRequest(image=cri_pb2.ImageSpec(image="busybox:1.28"))).image_ref
    image = shim.images.ImageStatus(cri_pb2.ImageStatusRequest(image=cri_pb2.ImageSpec(image="busybox:1.28"))).image
    assert image.id == ref
    assert list(image.repo_tags) == ["docker.io/library/busybox:1.28"]
    assert [d.split("@")[0] for d in image.repo_digests] == ["docker.io/library/busybox"]
    by_digest = shim.images.ImageStatus(cri_pb2.ImageStatusRequest(
        image=cri_pb2.ImageSpec(image=image.repo_digests[0]))).image
    assert by_digest.id == ref

    config = sandbox_config("pulled", shim.logs)
    sandbox_id = shim.runtime.RunPodSandbox(cri_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
    try:
        tags = {t for i in shim.images.ListImages(cri_pb2.ListImagesRequest()).images for t in i.repo_tags}
        assert tags == {"docker.io/library/busybox:1.28", PAUSE}
        check = "cat /etc/layer-2; test ! -e /etc/removed-by-layer-2"
        container = container_config("from-registry", ["sh", "-c", check])
        container.image.image = "docker.io/library/busybox:1.28"
        cid = shim.runtime.CreateContainer(cri_pb2.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=container, sandbox_config=config)).container_id
        shim.runtime.StartContainer(cri_pb2.StartContainerRequest(container_id=cid))
        wait_for(lambda: shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(
            container_id=cid)).status.state == cri_pb2.CONTAINER_EXITED, "the container to exit")
        st = shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(container_id=cid)).status
        assert (st.exit_code, st.image_ref) == (0, image.repo_digests[0])   # the whiteout of layer 2 hid the file
        assert Path(st.log_path).read_text().endswith(" stdout F two\n")
    finally:
        shim.runtime.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
        shim.runtime.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    shim.images.RemoveImage(cri_pb2.RemoveImageRequest(image=cri_pb2.ImageSpec(image="busybox:1.28")))
    assert shim.images.ImageStatus(cri_pb2.ImageStatusRequest(image=cri_pb2.ImageSpec(image="busybox:1.28"))) \
        == cri_pb2.ImageStatusResponse()
    fs = shim.images.ImageFsInfo(cri_pb2.ImageFsInfoRequest())
    assert fs.image_filesystems[0].used_bytes.value > 0


def test_insecure_registry_missing_image_and_unreachable_server(registry_shim: Shim) -> None:
    direct = registry_shim.images.PullImage(cri_pb2.PullImageRequest(
        image=cri_pb2.ImageSpec(image=f"127.0.0.1:{PORT}/library/busybox:1.28"))).image_ref
    assert direct.startswith("sha256:")
    with pytest.raises(grpc.RpcError) as err:
        registry_shim.images.PullImage(cri_pb2.PullImageRequest(
            image=cri_pb2.ImageSpec(image=f"127.0.0.1:{PORT}/library/busybox:nope")))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "busybox:nope" in str(err.value.details())
    with pytest.raises(grpc.RpcError) as err:   # docker.io's mirror lacks it and the real server is unreachable
        registry_shim.images.PullImage(cri_pb2.PullImageRequest(image=cri_pb2.ImageSpec(image="busybox:nope")))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "http://127.0.0.1:5000" in str(err.value.details())
