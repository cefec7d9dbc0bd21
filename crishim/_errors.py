"""The shim's one exception tree. Each error maps to a gRPC status code in
the service layer (proto/cri.proto's contract), so the runtime code raises
what went wrong in Kubernetes' words and never touches gRPC itself."""

from __future__ import annotations

import grpc


class CRIError(Exception):
    code = grpc.StatusCode.INTERNAL


class NotFound(CRIError):
    code = grpc.StatusCode.NOT_FOUND


class InvalidArgument(CRIError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class AlreadyExists(CRIError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(CRIError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(CRIError):
    """A registry (or another dependency) could not be reached."""
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(CRIError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class RuntimeFailure(CRIError):
    """runc, a CNI plugin, skopeo or the kernel refused; the message says which and why."""
    code = grpc.StatusCode.INTERNAL
