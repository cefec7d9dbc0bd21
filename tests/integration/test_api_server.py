"""The apiserver as a component: flags and --config, health and reflection,
/metrics, JSON logs, clean SIGTERM, request-size and in-flight limits, TLS
with token and client-certificate authentication, the authorizer chain,
and a local etcd process in place of the container."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import any_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from api import StatusError
from client import ClientConfig, Clientset
from deploy.local import APIServerProcess, EtcdProcess, free_port
from proto import api_pb2, api_pb2_grpc, core_pb2

from .conftest import Etcd, start_apiserver
from .test_api_crud import make_pod


def test_help_lists_the_flags() -> None:
    out = subprocess.run([sys.executable, "-m", "apiserver", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--etcd-servers", "--bind-address", "--port", "--unix-socket", "--tls-cert-file",
                 "--authorization-mode", "--config", "--metrics-bind-address"):
        assert flag in out.stdout


async def test_health_reflection_and_metrics(apiserver: APIServerProcess, client: Clientset,
                                             namespace: str) -> None:
    await client.resource(core_pb2.Pod, namespace).create(make_pod("m"))
    async with grpc.aio.insecure_channel(apiserver.target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="kubelab.api.v1.Resources"))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        services = {s.name async for r in call for s in r.list_services_response.service}
        assert {"kubelab.api.v1.Resources", "kubelab.api.v1.Discovery", "grpc.health.v1.Health"} <= services
    text = urllib.request.urlopen(f"http://127.0.0.1:{apiserver.metrics_port}/metrics", timeout=5).read().decode()
    assert 'apiserver_request_total{code="200",group="",resource="pods",verb="create"}' in text
    assert "apiserver_request_duration_seconds_bucket" in text
    assert 'etcd_request_duration_seconds_count{operation="create"}' in text
    assert "apiserver_registered_watchers" in text and 'apiserver_storage_objects{resource="pods"}' in text


def test_config_file_json_logs_and_sigterm(etcd: Etcd, workdir: Path) -> None:
    config = workdir / "apiserver.yaml"
    port = free_port()
    config.write_text(f"port: {port}\nlog-format: json\nwatch-cache-size: 500\n")
    proc = APIServerProcess(etcd.url, log=workdir / "json.log", extra=["--config", str(config)], port=port)
    try:
        proc.wait_ready()
        first = json.loads(proc.log.read_text().splitlines()[0])
        assert first["component"] == "apiserver" and first["level"] == "info" and "msg" in first
        start = time.monotonic()
        proc.stop()
        assert proc.proc.returncode == 0 and time.monotonic() - start < 10
        assert "apiserver stopped" in proc.log.read_text()
    finally:
        proc.kill()


def test_bad_flags_are_clear(etcd: Etcd) -> None:
    out = subprocess.run([sys.executable, "-m", "apiserver", "--service-node-port-range", "300-1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "invalid port range" in out.stderr


async def test_oversized_objects_are_refused(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    with pytest.raises(StatusError) as err:
        await cms.create(core_pb2.ConfigMap(metadata={"name": "big"}, data={"blob": "x" * 1_600_000}))
    assert (err.value.reason, err.value.message) == ("RequestEntityTooLarge",
                                                     "Request entity too large: limit is 1572864")
    with pytest.raises(StatusError, match="not found"):
        await cms.get("big")


async def test_inflight_limit_answers_too_many_requests(etcd: Etcd, workdir: Path, namespace: str) -> None:
    proc = start_apiserver(etcd, workdir, "--max-mutating-requests-inflight", "1")
    try:
        async with grpc.aio.insecure_channel(proc.target) as channel:
            stub = api_pb2_grpc.ResourcesStub(channel)

            async def raw_create(i: int) -> str:
                pod = make_pod(f"burst-{i}")
                req = api_pb2.CreateRequest(resource="pods", namespace=namespace, object=any_pb2.Any(
                    type_url="type.googleapis.com/kubelab.core.v1.Pod", value=pod.SerializeToString()))
                try:
                    await stub.Create(req)
                    return "ok"
                except grpc.aio.AioRpcError as err:
                    return StatusError.from_rpc_error(err).reason
            results = await asyncio.gather(*(raw_create(i) for i in range(30)))
        assert "TooManyRequests" in results and "ok" in results
        retrying = Clientset.connect(ClientConfig(server=proc.target))  # the client library retries them
        try:
            pods = retrying.resource(core_pb2.Pod, namespace)
            await asyncio.gather(*(pods.create(make_pod(f"retried-{i}")) for i in range(30)))
            assert len((await pods.list(label_selector="")).items) >= 30
        finally:
            await retrying.close()
    finally:
        proc.stop()


# ------------------------------------------------------------------ TLS and auth

def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          *, ca: bool = False, org: str = "") -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    name = x509.Name(attrs)
    issuer_name, issuer_key = issuer if issuer else (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("kubelab-ca", ca_key, None, ca=True)
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = root / name
        files[name].write_bytes(data)

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    write("ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    for name, cn, org in (("server", "127.0.0.1", ""), ("jane", "jane", "developers")):
        key = ec.generate_private_key(ec.SECP256R1())
        write(f"{name}.crt", _cert(cn, key, (ca.subject, ca_key), org=org).public_bytes(serialization.Encoding.PEM))
        write(f"{name}.key", pem_key(key))
    write("tokens.csv", b'secret-token,alice,1001,"admins,devs"\n')
    return files


def tls_server(etcd: Etcd, workdir: Path, pki: dict[str, Path], *extra: str) -> APIServerProcess:
    return start_apiserver(etcd, workdir, "--tls-cert-file", str(pki["server.crt"]), "--tls-private-key-file",
                           str(pki["server.key"]), "--token-auth-file", str(pki["tokens.csv"]), *extra,
                           ca_file=pki["ca.crt"])


async def test_tls_with_tokens_and_anonymous_access(etcd: Etcd, workdir: Path, pki: dict[str, Path]) -> None:
    proc = tls_server(etcd, workdir, pki, "--anonymous-auth", "false")
    base = ClientConfig(server=proc.target, certificate_authority=str(pki["ca.crt"]))
    try:
        async with Clientset.connect(base.with_overrides(token="secret-token")) as cs:
            assert (await cs.resource(core_pb2.Namespace).get("default")).metadata.name == "default"
        async with Clientset.connect(base.with_overrides(token="wrong")) as cs:
            with pytest.raises(StatusError) as err:
                await cs.resource(core_pb2.Namespace).get("default")
            assert err.value.reason == "Unauthorized"
        async with Clientset.connect(base) as cs:  # no credentials, anonymous access off
            with pytest.raises(StatusError) as err:
                await cs.resource(core_pb2.Namespace).get("default")
            assert err.value.reason == "Unauthorized"
        async with Clientset.connect(ClientConfig(server=proc.target)) as plain:  # TLS is required
            with pytest.raises(StatusError) as err:
                await plain.resource(core_pb2.Namespace).get("default")
            assert err.value.reason == "ServiceUnavailable"
    finally:
        proc.stop()


async def test_authorizer_names_the_user_from_a_client_certificate(etcd: Etcd, workdir: Path,
                                                                     pki: dict[str, Path]) -> None:
    proc = APIServerProcess(etcd.url, log=workdir / "mtls.log", ca_file=pki["ca.crt"], extra=[
        "--tls-cert-file", str(pki["server.crt"]), "--tls-private-key-file", str(pki["server.key"]),
        "--client-ca-file", str(pki["ca.crt"]), "--authorization-mode", "AlwaysDeny"])
    config = ClientConfig(server=proc.target, certificate_authority=str(pki["ca.crt"]),
                          client_certificate=str(pki["jane.crt"]), client_key=str(pki["jane.key"]))
    try:
        async with Clientset.connect(config) as cs:
            with pytest.raises(StatusError) as err:
                await cs.resource(core_pb2.Pod, "default").list()
            assert err.value.reason == "Forbidden"
            assert err.value.message.startswith('pods is forbidden: User "jane" cannot list resource "pods" in API '
                                                'group "" in the namespace "default"')
    finally:
        proc.stop()


async def test_a_local_etcd_process_works_as_well(workdir: Path) -> None:
    """The fallback the suite uses where no Docker engine runs."""
    etcd = EtcdProcess(workdir / "local-etcd", log=workdir / "local-etcd.log").wait_ready()
    proc = APIServerProcess(etcd.url, log=workdir / "local-apiserver.log").wait_ready()
    try:
        async with Clientset.connect(ClientConfig(server=proc.target)) as cs:
            pods = cs.resource(core_pb2.Pod, "default")
            await pods.create(make_pod("local"))
            assert (await pods.get("local")).metadata.name == "local"
    finally:
        proc.stop()
        etcd.stop()


async def test_etcd_restart_loses_nothing(workdir: Path) -> None:
    """Kill etcd under a running apiserver: calls fail as ServiceUnavailable
    (not as a crash), and once etcd is back on its data every object is
    there and the watch cache carries on from where it was."""
    data = workdir / "restart-etcd"
    client_port, peer_port = free_port(), free_port()
    etcd = EtcdProcess(data, client_port=client_port, peer_port=peer_port, log=workdir / "restart-etcd.log")
    etcd.wait_ready()
    proc = APIServerProcess(etcd.url, log=workdir / "restart-apiserver.log").wait_ready()
    try:
        async with Clientset.connect(ClientConfig(server=proc.target)) as cs:
            cms = cs.resource(core_pb2.ConfigMap, "default")
            before = await cms.create(core_pb2.ConfigMap(metadata={"name": "survivor"}, data={"k": "v"}))
            stream = cms.watch(resource_version=before.metadata.resourceVersion)
            etcd.kill()
            with pytest.raises(StatusError) as err:
                await cms.get("survivor")
            assert err.value.reason == "ServiceUnavailable"
            etcd = EtcdProcess(data, client_port=client_port, peer_port=peer_port,
                               log=workdir / "restart-etcd.log").wait_ready()
            for _ in range(100):  # the apiserver's channel reconnects with backoff
                try:
                    assert (await cms.get("survivor")).data["k"] == "v"
                    break
                except StatusError:
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("the apiserver did not reconnect to etcd")
            after = await cms.create(core_pb2.ConfigMap(metadata={"name": "after"}))

            async def next_event() -> str:
                async for event in stream:
                    return event.object.metadata.name
                raise AssertionError("watch ended")
            assert await asyncio.wait_for(next_event(), 30) == "after"
            assert int(after.metadata.resourceVersion) > int(before.metadata.resourceVersion)
    finally:
        proc.stop()
        etcd.stop()
