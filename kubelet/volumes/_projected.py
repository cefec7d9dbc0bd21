"""projected volumes: several sources (configMap, secret, downwardAPI,
serviceAccountToken) merged into one directory, as the
`kube-api-access-*` volume every pod gets in Kubernetes.

The sources are written in order into one payload (a later file of the
same path wins, as in Kubernetes), on a tmpfs like a Secret's, through the
AtomicWriter, so `refresh` swaps the whole set at once.

Two differences from Kubernetes, because kubelab has no TokenRequest API:

* serviceAccountToken: the token is the legacy, non-expiring one the
  controller-manager's serviceaccount-token controller keeps in the
  ServiceAccount's `kubernetes.io/service-account-token` Secret
  (controller_manager/serviceaccount_tokens.py). `audience` and
  `expirationSeconds` are ignored: the token is valid for the apiserver
  only, and until its Secret is deleted. No token Secret yet is a
  VolumeError; the kubelet retries, and the controller makes one within
  moments of the ServiceAccount.
* A configMap source naming `kube-root-ca.crt` is treated as optional:
  kubelab publishes that ConfigMap only when the cluster has a CA, so the
  standard kube-api-access volume works either way and holds `ca.crt`
  only when the ConfigMap exists.

clusterTrustBundle sources are not supported (a VolumeError).
"""

from __future__ import annotations

from typing import ClassVar

from api import StatusError
from proto import core_pb2

from ._atomic_writer import FileProjection
from ._base import MountedVolume, VolumeError, VolumeHost, VolumePlugin
from ._payload import Payload, config_map_data, default_mode, downward_api_payload, key_payload
from ._projections import CONFIG_MAP_MISSING_KEY, SECRET_MISSING_KEY, fetch, write_projection

ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
# Kubernetes' Secret type and annotations for legacy ServiceAccount tokens
# (the same values controller_manager/serviceaccount_tokens.py writes).
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a Secret type, not a password
ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"
ACCOUNT_UID_ANNOTATION = "kubernetes.io/service-account.uid"


def _is_token_of(secret: core_pb2.Secret, account: core_pb2.ServiceAccount) -> bool:
    annotations = secret.metadata.annotations
    uid = annotations.get(ACCOUNT_UID_ANNOTATION, "")
    return (secret.type == TOKEN_SECRET_TYPE and annotations.get(ACCOUNT_NAME_ANNOTATION) == account.metadata.name
            and (not uid or uid == account.metadata.uid) and bool(secret.data.get("token")))


async def service_account_token(host: VolumeHost, pod: core_pb2.Pod) -> bytes:
    """The pod's ServiceAccount token, from the account's token Secret: one
    the account lists in `secrets` first, else any token Secret annotated
    with the account's name (and uid)."""
    namespace = pod.metadata.namespace
    name = pod.spec.serviceAccountName or "default"
    try:
        account = await host.clientset.resource(core_pb2.ServiceAccount, namespace).get(name)
    except StatusError as err:
        if err.reason == "NotFound":
            raise VolumeError(f'serviceaccount "{name}" not found') from None
        raise VolumeError(f"couldn't get serviceaccount {namespace}/{name}: {err}") from None
    for ref in account.secrets:
        secret = await fetch(host.secrets, "secret", namespace, ref.name, optional=True)
        if secret is not None and _is_token_of(secret, account):
            return bytes(secret.data["token"])
    try:
        listed = await host.clientset.resource(core_pb2.Secret, namespace).list()
    except StatusError as err:
        raise VolumeError(f"couldn't list secrets in {namespace}: {err}") from None
    for secret in sorted(listed.items, key=lambda s: s.metadata.name):
        if _is_token_of(secret, account):
            return bytes(secret.data["token"])
    raise VolumeError(f"serviceaccount {namespace}/{name} has no token Secret yet (kubelab has no TokenRequest API: "
                      "the controller-manager's serviceaccount-token controller makes one)")


class ProjectedPlugin(VolumePlugin):
    NAME: ClassVar[str] = "kubernetes.io~projected"
    SOURCE: ClassVar[str] = "projected"
    refreshable: ClassVar[bool] = True

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        source = volume.projected
        mode = default_mode(source)
        namespace = pod.metadata.namespace
        payload: Payload = {}
        for index, projection in enumerate(source.sources):
            if projection.HasField("configMap"):
                ref = projection.configMap
                optional = ref.HasField("optional") and ref.optional
                obj = await fetch(host.config_maps, "configmap", namespace, ref.name,
                                  optional or ref.name == ROOT_CA_CONFIG_MAP)
                if obj is not None:
                    payload.update(key_payload(config_map_data(obj), ref.items, mode, optional=optional,
                                               missing_key=CONFIG_MAP_MISSING_KEY))
            elif projection.HasField("secret"):
                sref = projection.secret
                optional = sref.HasField("optional") and sref.optional
                secret = await fetch(host.secrets, "secret", namespace, sref.name, optional)
                if secret is not None:
                    payload.update(key_payload(dict(secret.data), sref.items, mode, optional=optional,
                                               missing_key=SECRET_MISSING_KEY))
            elif projection.HasField("downwardAPI"):
                payload.update(downward_api_payload(pod, projection.downwardAPI.items, mode,
                                                    node_allocatable=host.node_allocatable))
            elif projection.HasField("serviceAccountToken"):
                token = await service_account_token(host, pod)
                payload[projection.serviceAccountToken.path] = FileProjection(token, mode)
            else:
                raise VolumeError(f"sources[{index}]: kubelab supports configMap, secret, downwardAPI and "
                                  "serviceAccountToken projections (not clusterTrustBundle)")
        return write_projection(host, pod, self.NAME, volume, payload, memory=host.memory_backed_secrets)
