"""Authentication and authorization: two pluggable chains.

Authentication turns a call's credentials into a user: a bearer token from
a static token file (Kubernetes' --token-auth-file format), or the common
name and organisations of a TLS client certificate; a call with neither is
`system:anonymous`. Authorization asks each authorizer in turn whether that
user may do this verb on this resource; the first that decides wins, and the
default chain allows everything, so RBAC can be added as one more authorizer
without reshaping the server.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from api import StatusError, new_error, qualified, unauthorized


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


@dataclass(frozen=True)
class Credentials:
    """What a call presented: its gRPC metadata and, over TLS, the peer's
    certificate subject."""

    metadata: Mapping[str, str]
    cert_common_name: str = ""
    cert_organizations: tuple[str, ...] = ()


class Authenticator(Protocol):
    def authenticate(self, creds: Credentials) -> UserInfo | None:
        """A user, None for "not my kind of credential"; raises
        StatusError(Unauthorized) for a credential that is wrong."""
        ...


class TokenFileAuthenticator:
    """Bearer tokens from a CSV file: token,user,uid[,"group1,group2"]."""

    def __init__(self, path: str) -> None:
        self._tokens: dict[str, UserInfo] = {}
        with open(path, newline="") as fh:
            for row in csv.reader(fh):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 3:
                    raise ValueError(f"{path}: a token line needs at least token,user,uid: {row!r}")
                groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
                self._tokens[row[0]] = UserInfo(row[1], (*groups, "system:authenticated"), row[2])

    def authenticate(self, creds: Credentials) -> UserInfo | None:
        header = creds.metadata.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        user = self._tokens.get(header[7:].strip())
        if user is None:
            raise unauthorized("Unauthorized: invalid bearer token")
        return user


class ClientCertAuthenticator:
    """The user a verified client certificate names (CN = user, O = groups)."""

    def authenticate(self, creds: Credentials) -> UserInfo | None:
        if not creds.cert_common_name:
            return None
        return UserInfo(creds.cert_common_name, (*creds.cert_organizations, "system:authenticated"))


class AuthenticatorChain:
    def __init__(self, authenticators: Sequence[Authenticator], allow_anonymous: bool = True) -> None:
        self._authenticators = list(authenticators)
        self._anonymous = allow_anonymous
        #: False when every call is anonymous anyway, so the server need not
        #: read each call's metadata.
        self.needs_credentials = bool(self._authenticators) or not allow_anonymous

    def authenticate(self, creds: Credentials) -> UserInfo:
        for auth in self._authenticators:
            user = auth.authenticate(creds)
            if user is not None:
                return user
        if self._anonymous:
            return ANONYMOUS
        raise unauthorized()


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True)
class RequestAttributes:
    user: UserInfo
    verb: str  # get, list, watch, create, update, patch, delete
    group: str
    resource: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""


class Authorizer(Protocol):
    def authorize(self, attrs: RequestAttributes) -> tuple[Decision, str]: ...


class AlwaysAllow:
    def authorize(self, attrs: RequestAttributes) -> tuple[Decision, str]:
        return Decision.ALLOW, ""


class AlwaysDeny:
    def authorize(self, attrs: RequestAttributes) -> tuple[Decision, str]:
        return Decision.DENY, "every request is denied (--authorization-mode=AlwaysDeny)"


class AuthorizerChain:
    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self._authorizers = list(authorizers)

    def check(self, attrs: RequestAttributes) -> None:
        """Raise Forbidden unless some authorizer allows the request."""
        reasons = []
        for authorizer in self._authorizers:
            decision, reason = authorizer.authorize(attrs)
            if decision is Decision.ALLOW:
                return
            if reason:
                reasons.append(reason)
            if decision is Decision.DENY:
                break
        raise forbidden_request(attrs, "; ".join(reasons))


def forbidden_request(attrs: RequestAttributes, reason: str = "") -> StatusError:
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    target = qualified(attrs.resource, attrs.group)
    subject = f'{target} "{attrs.name}"' if attrs.name else target
    scope = f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    message = (f'{subject} is forbidden: User "{attrs.user.name}" cannot {attrs.verb} resource "{resource}" '
               f'in API group "{attrs.group}"{scope}')
    if reason:
        message += f": {reason}"
    return new_error("Forbidden", message, name=attrs.name, group=attrs.group, kind=attrs.resource)


def authorizer_for_mode(mode: str) -> Authorizer:
    modes: dict[str, Authorizer] = {"AlwaysAllow": AlwaysAllow(), "AlwaysDeny": AlwaysDeny()}
    if mode not in modes:
        raise ValueError(f"unknown authorization mode {mode!r}: choose from {', '.join(modes)}")
    return modes[mode]
