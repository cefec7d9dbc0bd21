"""Manifests <-> protobuf messages.

Protobuf's own JSON mapping almost reads Kubernetes manifests (the field
names match by design, see proto/meta.proto), but not quite: it writes int64
as strings, knows nothing of quantities ("250m" or a bare 0.5) or
int-or-string fields, and its errors do not say where in a manifest the
problem is. This codec walks the message descriptors itself and behaves like
the apiserver's strict decoder: every unknown field is reported with its
path (`strict decoding error: unknown field "spec.foo"`), a wrong JSON type
names the field and the type it needed, and output leaves out unset fields
the way Go's `omitempty` does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any, TypeVar

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ._errors import StatusError, bad_request
from ._quantity import QuantityError, canonical_quantity
from ._scheme import SCHEME, Kind, UnknownKindError

M = TypeVar("M", bound=Message)

_QUANTITY = "kubelab.meta.v1.Quantity"
_INT_OR_STRING = "kubelab.meta.v1.IntOrString"
_STRUCT = "google.protobuf.Struct"

_INT32 = (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32)
_INT64 = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64,
          FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64)


class _TypeMismatch(Exception):
    """A JSON value of the wrong type; becomes one clear error message."""


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _message_type(field: FieldDescriptor) -> Any:
    """The message type of a message field (typed Any: the stubs say Optional)."""
    return field.message_type


def _is_map(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE and _is_repeated(field)
            and bool(_message_type(field).GetOptions().map_entry))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _go_type(field: FieldDescriptor, element: bool = False) -> str:
    """Name a field's type the way Go's json errors do."""
    if _is_map(field) and not element:
        return f"map[string]{_go_type(_message_type(field).fields_by_name['value'], True)}"
    prefix = "[]" if _is_repeated(field) and not element else ""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        msg = _message_type(field)
        if msg.full_name == _QUANTITY:
            return prefix + "resource.Quantity"
        if msg.full_name == _INT_OR_STRING:
            return prefix + "intstr.IntOrString"
        package_version = msg.file.package.rsplit(".", 1)[-1]
        return f"{prefix}{package_version}.{msg.name}"
    names = {FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BOOL: "bool",
             FieldDescriptor.TYPE_BYTES: "[]uint8", FieldDescriptor.TYPE_DOUBLE: "float64"}
    if field.type in _INT32:
        return prefix + "int32"
    if field.type in _INT64:
        return prefix + "int64"
    return prefix + names.get(field.type, "value")


class _Decoder:
    def __init__(self) -> None:
        self.unknown: list[str] = []

    def message(self, msg: Message, data: Any, path: str, parent: str, field: FieldDescriptor | None) -> None:
        if not isinstance(data, dict):
            raise self._mismatch(data, path, parent, field)
        desc: Any = msg.DESCRIPTOR
        for key, value in data.items():
            if not isinstance(key, str):
                self.unknown.append(_join(path, str(key)))
                continue
            sub = desc.fields_by_name.get(key)
            if sub is None:
                self.unknown.append(_join(path, key))
                continue
            if value is None:
                continue
            self.field(msg, sub, value, _join(path, key), desc.name)

    def field(self, msg: Message, field: FieldDescriptor, value: Any, path: str, parent: str) -> None:
        name = field.name
        if _is_map(field):
            if not isinstance(value, dict):
                raise self._mismatch(value, path, parent, field)
            target = getattr(msg, name)
            value_field = _message_type(field).fields_by_name["value"]
            for k, v in value.items():
                if not isinstance(k, str):
                    raise _TypeMismatch(f"json: cannot unmarshal number into Go value of type string "
                                        f"(map key in {path})")
                if v is None:
                    continue
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    self.element(target[k], value_field, v, f"{path}[{k}]", parent)
                else:
                    target[k] = self.scalar(value_field, v, path, parent)
        elif _is_repeated(field):
            if not isinstance(value, list):
                raise self._mismatch(value, path, parent, field)
            target = getattr(msg, name)
            for i, item in enumerate(value):
                item_path = f"{path}[{i}]"
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    if item is None:
                        target.add()
                        continue
                    self.element(target.add(), field, item, item_path, parent)
                else:
                    if item is None:
                        raise self._mismatch(item, path, parent, field)
                    target.append(self.scalar(field, item, path, parent))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            sub = getattr(msg, name)
            sub.SetInParent()
            self.element(sub, field, value, path, parent)
        else:
            setattr(msg, name, self.scalar(field, value, path, parent))

    def element(self, target: Message, field: FieldDescriptor, value: Any, path: str, parent: str) -> None:
        """Fill one message value: a field, a list item or a map value."""
        full = target.DESCRIPTOR.full_name
        if full == _QUANTITY:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise self._mismatch(value, path, parent, field)
            try:
                target.value = canonical_quantity(value)  # type: ignore[attr-defined]
            except QuantityError as err:
                raise _TypeMismatch(f"{path}: {err}") from None
        elif full == _INT_OR_STRING:
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise self._mismatch(value, path, parent, field)
            if isinstance(value, int):
                if not -(2 ** 31) <= value < 2 ** 31:
                    raise self._mismatch(value, path, parent, field)
                target.intVal = value  # type: ignore[attr-defined]
            else:
                target.strVal = value  # type: ignore[attr-defined]
        elif full == _STRUCT:
            if not isinstance(value, dict):
                raise self._mismatch(value, path, parent, field)
            json_format.ParseDict(value, target)
        else:
            self.message(target, value, path, parent, field)

    def scalar(self, field: FieldDescriptor, value: Any, path: str, parent: str) -> Any:
        t = field.type
        if t == FieldDescriptor.TYPE_STRING:
            if isinstance(value, str):
                return value
        elif t == FieldDescriptor.TYPE_BOOL:
            if isinstance(value, bool):
                return value
        elif t in _INT32 or t in _INT64:
            if isinstance(value, int) and not isinstance(value, bool):
                bits = 32 if t in _INT32 else 64
                if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                    return value
        elif t == FieldDescriptor.TYPE_BYTES:
            if isinstance(value, str):
                try:
                    return base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise _TypeMismatch(f"{path}: illegal base64 data: {value[:20]!r}") from None
        elif t == FieldDescriptor.TYPE_DOUBLE:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        raise self._mismatch(value, path, parent, field)

    @staticmethod
    def _mismatch(value: Any, path: str, parent: str, field: FieldDescriptor | None) -> _TypeMismatch:
        shown = _json_type(value)
        if shown == "number":
            shown = f"number {value}"
        want = _go_type(field) if field is not None else "object"
        return _TypeMismatch(f"json: cannot unmarshal {shown} into Go struct field {parent}.{path} of type {want}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def from_dict(cls: type[M], data: Any, *, what: str = "") -> M:
    """Build a message from manifest data, strictly. `what` starts the error
    message, e.g. 'Pod in version "v1" cannot be handled as a Pod'."""
    msg = cls()
    decoder = _Decoder()
    head = what or f"{cls.DESCRIPTOR.name} cannot be decoded"
    try:
        decoder.message(msg, data, "", cls.DESCRIPTOR.name, None)
    except _TypeMismatch as err:
        raise bad_request(f"{head}: {err}") from None
    if decoder.unknown:
        fields = ", ".join(f'unknown field "{p}"' for p in decoder.unknown)
        raise bad_request(f"{head}: strict decoding error: {fields}")
    return msg


# ------------------------------------------------------------------ encoding

def _encode_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        full = _message_type(field).full_name
        if full == _QUANTITY:
            return value.value
        if full == _INT_OR_STRING:
            kind = value.WhichOneof("kind")
            return value.intVal if kind == "intVal" else value.strVal
        if full == _STRUCT:
            return json_format.MessageToDict(value)
        return to_dict(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    return value


def to_dict(msg: Message) -> dict[str, Any]:
    """The manifest form of a message: set fields only, Kubernetes' names."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if _is_map(field):
            value_field = _message_type(field).fields_by_name["value"]
            out[field.name] = {k: _encode_value(value_field, v) for k, v in value.items()}
        elif _is_repeated(field):
            out[field.name] = [_encode_value(field, v) for v in value]
        else:
            out[field.name] = _encode_value(field, value)
    return out


# ------------------------------------------------------------------ manifests

def kind_of_manifest(doc: Any) -> Kind:
    """The kind a manifest names, or the error kubectl would print."""
    if not isinstance(doc, dict):
        raise bad_request(f"error converting YAML to JSON: expected an object, got {_json_type(doc)}")
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if not kind or not isinstance(kind, str):
        raise bad_request("Object 'Kind' is missing in the document")
    if not api_version or not isinstance(api_version, str):
        raise bad_request(f"Object 'apiVersion' is missing in the {kind} document")
    try:
        return SCHEME.by_gvk(api_version, kind)
    except UnknownKindError as err:
        hint = ""
        known = SCHEME.versions_of_kind(kind)
        if known:
            hint = f" (this server serves {kind} as {', '.join(k.api_version for k in known)})"
        raise StatusError(bad_request(f"{err}{hint}").status) from None


def decode_manifest(doc: Any) -> Message:
    """A manifest (apiVersion, kind and the object's fields) as its message."""
    kind = kind_of_manifest(doc)
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    return from_dict(kind.message, body,
                     what=f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}')


def encode_manifest(msg: Message) -> dict[str, Any]:
    """A message as a manifest, with apiVersion and kind first."""
    kind = SCHEME.for_message(msg)
    return {"apiVersion": kind.api_version, "kind": kind.kind, **to_dict(msg)}


class _Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(text: str, source: str = "<stdin>") -> list[Any]:
    """Every non-empty document in a YAML or JSON stream, with `kind: List`
    expanded to its items. A syntax error names the line, like kubectl."""
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise bad_request(f'error parsing {source}: error converting YAML to JSON: yaml: {where}{problem}') from None
    out: list[Any] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out


def dump_yaml(data: Any) -> str:
    """YAML the way kubectl prints it: keys sorted, block style."""
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def dump_yaml_documents(docs: Iterable[Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=True, default_flow_style=False, allow_unicode=True)
