"""The one exception tree for API failures, and how it crosses gRPC.

Every failure the apiserver reports is a `StatusError` holding a
`meta.v1.Status` like Kubernetes' metav1.Status: a machine-readable reason
(NotFound, Conflict, Invalid, ...), an HTTP-style code and a message that
names the object, the field and the rule. On the wire it becomes a gRPC
status code plus the Status in the rich-error details, so a client gets the
same exception back, with the same reason, whichever side raised it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2

from proto import meta_pb2

# reason -> (HTTP code, gRPC code)
_REASONS: dict[str, tuple[int, grpc.StatusCode]] = {
    "BadRequest": (400, grpc.StatusCode.INVALID_ARGUMENT),
    "Unauthorized": (401, grpc.StatusCode.UNAUTHENTICATED),
    "Forbidden": (403, grpc.StatusCode.PERMISSION_DENIED),
    "NotFound": (404, grpc.StatusCode.NOT_FOUND),
    "MethodNotAllowed": (405, grpc.StatusCode.UNIMPLEMENTED),
    "AlreadyExists": (409, grpc.StatusCode.ALREADY_EXISTS),
    "Conflict": (409, grpc.StatusCode.ABORTED),
    "Gone": (410, grpc.StatusCode.OUT_OF_RANGE),
    "Expired": (410, grpc.StatusCode.OUT_OF_RANGE),
    "RequestEntityTooLarge": (413, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "Invalid": (422, grpc.StatusCode.INVALID_ARGUMENT),
    "TooManyRequests": (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "InternalError": (500, grpc.StatusCode.INTERNAL),
    "ServiceUnavailable": (503, grpc.StatusCode.UNAVAILABLE),
    "Timeout": (504, grpc.StatusCode.DEADLINE_EXCEEDED),
}

# What a bare gRPC failure (no Status attached) means in Kubernetes terms.
_GRPC_TO_REASON: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INVALID_ARGUMENT: "BadRequest",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthorized",
    grpc.StatusCode.PERMISSION_DENIED: "Forbidden",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.UNIMPLEMENTED: "MethodNotAllowed",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.ABORTED: "Conflict",
    grpc.StatusCode.OUT_OF_RANGE: "Gone",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "TooManyRequests",
    grpc.StatusCode.UNAVAILABLE: "ServiceUnavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Timeout",
}

_DETAILS_KEY = "grpc-status-details-bin"


class StatusError(Exception):
    """An API failure: `reason` says what kind, `str(err)` says what exactly."""

    def __init__(self, status: meta_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status

    @property
    def reason(self) -> str:
        return self.status.reason

    @property
    def code(self) -> int:
        return self.status.code

    @property
    def message(self) -> str:
        return self.status.message

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _REASONS.get(self.reason, (500, grpc.StatusCode.UNKNOWN))[1]

    def __repr__(self) -> str:
        return f"StatusError({self.reason}: {self.message})"

    # ------------------------------------------------------------ wire form

    def to_rpc_status(self) -> status_pb2.Status:
        detail = any_pb2.Any()
        detail.Pack(self.status)
        return status_pb2.Status(code=self.grpc_code.value[0], message=self.message, details=[detail])

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ((_DETAILS_KEY, self.to_rpc_status().SerializeToString()),)

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> StatusError:
        """Rebuild the error a server raised, or describe a transport failure."""
        metadata: Any = err.trailing_metadata() or ()  # type: ignore[attr-defined]
        for key, value in metadata:
            if key == _DETAILS_KEY:
                rpc_status = status_pb2.Status.FromString(value)
                for detail in rpc_status.details:
                    status = meta_pb2.Status()
                    if detail.Unpack(status):
                        return cls(status)
        code: grpc.StatusCode = err.code()  # type: ignore[attr-defined]
        details = err.details() or code.name  # type: ignore[attr-defined]
        reason = _GRPC_TO_REASON.get(code, "InternalError")
        if code == grpc.StatusCode.UNAVAILABLE:
            details = f"the server is unavailable: {details}"
        return new_error(reason, details)


def new_error(reason: str, message: str, *, name: str = "", group: str = "", kind: str = "",
              causes: Iterable[meta_pb2.StatusCause] = (), retry_after: int = 0) -> StatusError:
    code = _REASONS.get(reason, (500, grpc.StatusCode.UNKNOWN))[0]
    details = meta_pb2.StatusDetails(name=name, group=group, kind=kind, causes=list(causes),
                                     retryAfterSeconds=retry_after)
    return StatusError(meta_pb2.Status(status="Failure", message=message, reason=reason, code=code,
                                       details=details))


# ------------------------------------------------------------ qualified names

def qualified(name: str, group: str) -> str:
    """"deployments.apps" / "Deployment.apps" for a named group, bare for core."""
    return f"{name}.{group}" if group else name


def not_found(resource: str, group: str, name: str) -> StatusError:
    return new_error("NotFound", f'{qualified(resource, group)} "{name}" not found',
                     name=name, group=group, kind=resource)


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return new_error("AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                     name=name, group=group, kind=resource)


def conflict(resource: str, group: str, name: str, why: str) -> StatusError:
    return new_error("Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                     name=name, group=group, kind=resource)


def stale_update(resource: str, group: str, name: str) -> StatusError:
    return conflict(resource, group, name,
                    "the object has been modified; please apply your changes to the latest version and try again")


def forbidden(resource: str, group: str, name: str, why: str) -> StatusError:
    target = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    return new_error("Forbidden", f"{target} is forbidden: {why}", name=name, group=group, kind=resource)


def bad_request(message: str) -> StatusError:
    return new_error("BadRequest", message)


def gone(message: str) -> StatusError:
    return new_error("Gone", message)


def too_many_requests(message: str = "Too many requests, please try again later.", retry_after: int = 1) -> StatusError:
    return new_error("TooManyRequests", message, retry_after=retry_after)


def too_large(limit: int) -> StatusError:
    return new_error("RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def internal(message: str) -> StatusError:
    return new_error("InternalError", f"Internal error occurred: {message}")


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return new_error("Unauthorized", message)


# ------------------------------------------------------------ field errors

def _show(value: Any) -> str:
    """Render a bad value the way Kubernetes' %#v does, near enough."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return "null"
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:
        return str(value)


@dataclass(frozen=True)
class FieldError:
    """One broken rule at one field path, as Kubernetes' field.Error."""

    type: str  # FieldValueRequired, FieldValueInvalid, ...
    field: str
    bad_value: Any = None
    detail: str = ""

    def __str__(self) -> str:
        head = f"{self.field}: " if self.field else ""
        if self.type == "FieldValueRequired":
            body = "Required value"
        elif self.type == "FieldValueInvalid":
            body = f"Invalid value: {_show(self.bad_value)}"
        elif self.type == "FieldValueNotSupported":
            body = f"Unsupported value: {_show(self.bad_value)}"
        elif self.type == "FieldValueDuplicate":
            body = f"Duplicate value: {_show(self.bad_value)}"
        elif self.type == "FieldValueNotFound":
            body = f"Not found: {_show(self.bad_value)}"
        elif self.type == "FieldValueForbidden":
            body = "Forbidden"
        elif self.type == "FieldValueTooLong":
            body = "Too long"
        elif self.type == "FieldValueTooMany":
            body = f"Too many: {_show(self.bad_value)}"
        else:
            body = "Internal error"
        return f"{head}{body}: {self.detail}" if self.detail else f"{head}{body}"


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field, None, detail)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", field, value, detail)


def not_supported(field: str, value: Any, supported: Sequence[str]) -> FieldError:
    listed = ", ".join(json.dumps(s) for s in supported)
    return FieldError("FieldValueNotSupported", field, value, f"supported values: {listed}")


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", field, value)


def not_found_field(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", field, value)


def forbidden_field(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, None, detail)


def too_long(field: str, limit: int) -> FieldError:
    return FieldError("FieldValueTooLong", field, None, f"may not be more than {limit} bytes")


def too_many(field: str, actual: int, limit: int) -> FieldError:
    return FieldError("FieldValueTooMany", field, actual, f"must have at most {limit} items")


def invalid_object(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> StatusError:
    """`Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: ...`"""
    rendered = [str(e) for e in errors]
    body = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    causes = [meta_pb2.StatusCause(reason=e.type, message=str(e).split(": ", 1)[-1], field=e.field)
              for e in errors]
    return new_error("Invalid", f'{qualified(kind, group)} "{name}" is invalid: {body}',
                     name=name, group=group, kind=kind, causes=causes)
