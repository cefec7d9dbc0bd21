"""The files a configMap, secret, downwardAPI or projected volume holds.

Each function turns an API object (or the pod itself) plus the volume's
`items` into a payload - relative path -> FileProjection(bytes, mode) - for
the AtomicWriter, with Kubernetes' rules:

* no `items`: every key becomes a file of the same name (a ConfigMap's
  `data` and `binaryData` both);
* `items`: only the listed keys, at their `path`, with their own `mode`
  or the volume's default; a listed key the object lacks is an error
  unless the source is optional, in which case it is skipped;
* a file's mode is the item's `mode`, else the volume's `defaultMode`,
  else 0644.

Errors are VolumeErrors worded as the kubelet words them (`configmap
references non-existent config key: k`); nothing is written when one is
raised, so the volume keeps its previous content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubelet._env import container_resource_value, find_container, pod_field_value
from proto import core_pb2

from ._atomic_writer import FileProjection
from ._base import VolumeError

DEFAULT_MODE = 0o644

Payload = dict[str, FileProjection]


def default_mode(source: Any) -> int:
    """A volume source's defaultMode, or 0644 when unset."""
    return source.defaultMode if source.HasField("defaultMode") else DEFAULT_MODE


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def key_payload(data: Mapping[str, bytes | str], items: Iterable[core_pb2.KeyToPath], mode: int, *,
                optional: bool, missing_key: str) -> Payload:
    """The payload of a ConfigMap's or Secret's keys. `missing_key` is the
    error prefix for a listed key the object does not have."""
    items = list(items)
    if not items:
        return {key: FileProjection(_as_bytes(value), mode) for key, value in data.items()}
    payload: Payload = {}
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise VolumeError(f"{missing_key}: {item.key}")
        payload[item.path] = FileProjection(_as_bytes(data[item.key]),
                                            item.mode if item.HasField("mode") else mode)
    return payload


def config_map_data(config_map: core_pb2.ConfigMap | None) -> dict[str, bytes | str]:
    """A ConfigMap's data and binaryData as one mapping (None: empty)."""
    if config_map is None:
        return {}
    merged: dict[str, bytes | str] = dict(config_map.data)
    merged.update(config_map.binaryData)
    return merged


def downward_api_payload(pod: core_pb2.Pod, items: Iterable[core_pb2.DownwardAPIVolumeFile], mode: int, *,
                         node_allocatable: Mapping[str, Any] | None) -> Payload:
    """The files of a downwardAPI volume (or projection): pod fields by
    fieldRef, container resources by resourceFieldRef. Every bad item is
    reported, in one VolumeError."""
    payload: Payload = {}
    errors: list[str] = []
    for item in items:
        file_mode = item.mode if item.HasField("mode") else mode
        try:
            if item.HasField("fieldRef"):
                value = pod_field_value(pod, item.fieldRef)
            elif item.HasField("resourceFieldRef"):
                ref = item.resourceFieldRef
                if not ref.containerName:
                    raise ValueError("resourceFieldRef needs containerName in a volume")
                value = container_resource_value(ref, find_container(pod, ref.containerName), node_allocatable)
            else:
                raise ValueError("needs fieldRef or resourceFieldRef")
        except ValueError as err:
            errors.append(f"downwardAPI item {item.path}: {err}")
            continue
        payload[item.path] = FileProjection(value.encode(), file_mode)
    if errors:
        raise VolumeError("; ".join(errors))
    return payload
