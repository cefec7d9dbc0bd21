"""ServiceAccount tokens: signed JWTs a pod presents as its identity
(Kubernetes' serviceaccount-token controller, legacy Secret-based tokens as
Kubernetes issued them before 1.24).

Every ServiceAccount gets a Secret `<account>-token-<random>` of type
`kubernetes.io/service-account-token`, listed in the account's `secrets`,
holding `token`, `namespace` and (with `--root-ca-file`) `ca.crt`. A
token Secret someone creates by hand with the annotation
`kubernetes.io/service-account.name` - the way current Kubernetes still
hands out long-lived tokens - is filled in the same way. Tokens of an
account that is gone (or was re-created: checked by uid) are deleted.

The token is a JWT signed with the key in `--service-account-private-key-file`
(RSA -> RS256, EC -> ES256/384/512), with Kubernetes' legacy claims:

    iss  kubernetes/serviceaccount
    sub  system:serviceaccount:<namespace>:<name>
    kubernetes.io/serviceaccount/namespace             <namespace>
    kubernetes.io/serviceaccount/secret.name           <secret>
    kubernetes.io/serviceaccount/service-account.name  <name>
    kubernetes.io/serviceaccount/service-account.uid   <uid>

and a `kid` header (base64url of the SHA-256 of the public key's DER),
as kube-controller-manager writes. Such tokens do not expire; an
apiserver verifies them with the public key and checks that the Secret and
the account (by uid) still exist.

The key: if the named file does not exist it is generated there (RSA 2048,
mode 0600) with its public half beside it as `<file>.pub`, for the
apiserver's verification flag; without the flag, a key is generated in
memory for this process only (logged: its tokens stop verifying when the
process restarts), so that tests and throwaway clusters work without
writing anything.

Keys are ServiceAccount keys; Secret changes map to their account through
the name annotation.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api import StatusError
from client import split_key
from proto import core_pb2

from ._controller import Controller, ControllerContext
from ._podutil import unwrap

log = logging.getLogger(__name__)

ISSUER = "kubernetes/serviceaccount"
TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a Secret type, not a password
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
ACCOUNT_INDEX = "serviceaccount-token:account"
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

ServiceAccount = core_pb2.ServiceAccount
Secret = core_pb2.Secret
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class TokenSigner:
    """Signs legacy ServiceAccount tokens with one private key."""

    def __init__(self, key: PrivateKey) -> None:
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = "RS256"
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            self.algorithm = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(key.curve.name, "")
            if not self.algorithm:
                raise ValueError(f"unsupported elliptic curve {key.curve.name} for ServiceAccount tokens")
        else:
            raise ValueError("ServiceAccount tokens need an RSA or EC private key")
        self._key = key
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()

    @classmethod
    def generate(cls) -> TokenSigner:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def from_file(cls, path: str | Path) -> TokenSigner:
        """Load a PEM private key, generating it (and `<path>.pub`) if the
        file does not exist yet."""
        path = Path(path)
        if not path.exists():
            signer = cls.generate()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(signer.private_pem())
            Path(f"{path}.pub").write_bytes(signer.public_pem())
            log.info("generated a ServiceAccount signing key in %s (public key in %s.pub)", path, path)
            return signer
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError(f"{path}: ServiceAccount tokens need an RSA or EC private key")
        return cls(key)

    def private_pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def public_pem(self) -> bytes:
        return self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    def legacy_token(self, namespace: str, account: str, account_uid: str, secret_name: str) -> str:
        claims = {
            "iss": ISSUER,
            "sub": f"system:serviceaccount:{namespace}:{account}",
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": account,
            "kubernetes.io/serviceaccount/service-account.uid": account_uid,
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"kid": self.kid})


def _account_index(secret: Secret) -> list[str]:
    name = secret.metadata.annotations.get(NAME_ANNOTATION, "")
    return [f"{secret.metadata.namespace}/{name}"] if secret.type == TOKEN_TYPE and name else []


class TokensController(Controller):
    name = "serviceaccount-token"
    event_source = "tokens-controller"
    default_workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        key_file = getattr(opts, "service_account_private_key_file", "")
        if key_file:
            self.signer = TokenSigner.from_file(key_file)
        else:
            self.signer = TokenSigner.generate()
            log.warning("no --service-account-private-key-file: signing ServiceAccount tokens with a key made for "
                        "this process; they will not verify after it restarts")
        ca_file = getattr(opts, "root_ca_file", "")
        self.root_ca = Path(ca_file).read_bytes() if ca_file else b""
        accounts = ctx.informers.informer_for(ServiceAccount)
        secrets_informer = ctx.informers.informer_for(Secret)
        try:
            secrets_informer.add_indexers({ACCOUNT_INDEX: _account_index})
        except ValueError:
            pass  # a second instance in one process (tests): the index is there
        self.accounts = accounts.lister()
        self.secrets = secrets_informer.lister()
        accounts.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                   on_delete=self.enqueue)
        secrets_informer.add_event_handler(on_add=self._secret_changed,
                                           on_update=lambda _old, new: self._secret_changed(new),
                                           on_delete=lambda s: self._secret_changed(unwrap(s)))
        #: account uid -> the token Secret made for it whose reference the cache may not show yet
        self._made: dict[str, str] = {}

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("serviceaccount-token controller")
        g.add_argument("--service-account-private-key-file", default="", metavar="PEM",
                       help="the RSA or EC key that signs ServiceAccount tokens; generated there (with <file>.pub) "
                            "if missing; without it, a key is made for this process only")
        g.add_argument("--root-ca-file", default="", metavar="PEM",
                       help="the cluster CA certificate put into token Secrets as ca.crt")

    def _secret_changed(self, secret: Secret) -> None:
        for key in _account_index(secret):
            self.queue.add(key)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            account: ServiceAccount | None = self.accounts.get(namespace, name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            account = await self._fetch_account(namespace, name)  # the cache may just be behind
        tokens = self.secrets.by_index(ACCOUNT_INDEX, key)
        if account is None or account.metadata.deletionTimestamp:
            for secret in tokens:
                await self._delete(secret)
            return
        uid = account.metadata.uid
        live: list[Secret] = []
        for secret in tokens:
            owner_uid = secret.metadata.annotations.get(UID_ANNOTATION)
            if owner_uid and owner_uid != uid:
                await self._delete(secret)  # a token of an earlier account of that name
                continue
            live.append(secret)
        for secret in live:
            if self._needs_token(secret, uid):
                await self._populate(secret, account)
        await self._ensure_referenced(account, live)

    async def _fetch_account(self, namespace: str, name: str) -> ServiceAccount | None:
        try:
            return await self.clientset.resource(ServiceAccount, namespace).get(name)
        except StatusError as err:
            if err.reason == "NotFound":
                return None
            raise

    def _needs_token(self, secret: Secret, uid: str) -> bool:
        data = secret.data
        return not data.get("token") or data.get("namespace") != secret.metadata.namespace.encode() or \
            secret.metadata.annotations.get(UID_ANNOTATION) != uid or \
            (bool(self.root_ca) and data.get("ca.crt") != self.root_ca)

    def _fill(self, secret: Secret, account: ServiceAccount) -> None:
        meta = account.metadata
        secret.type = TOKEN_TYPE
        secret.metadata.annotations[NAME_ANNOTATION] = meta.name
        secret.metadata.annotations[UID_ANNOTATION] = meta.uid
        token = self.signer.legacy_token(meta.namespace, meta.name, meta.uid, secret.metadata.name)
        secret.data["token"] = token.encode()
        secret.data["namespace"] = meta.namespace.encode()
        if self.root_ca:
            secret.data["ca.crt"] = self.root_ca

    async def _populate(self, secret: Secret, account: ServiceAccount) -> None:
        new = Secret()
        new.CopyFrom(secret)
        self._fill(new, account)
        try:
            await self.clientset.resource(Secret, secret.metadata.namespace).update(new)
        except StatusError as err:
            if err.reason != "NotFound":
                raise

    async def _ensure_referenced(self, account: ServiceAccount, live: list[Secret]) -> None:
        """The account lists at least one token Secret of its own."""
        meta = account.metadata
        names = {s.metadata.name for s in live}
        referenced = [r.name for r in account.secrets if r.name in names]
        made = self._made.get(meta.uid)
        if referenced:
            if made in referenced:
                del self._made[meta.uid]
            return
        if made is not None and made not in names and not await self._exists(meta.namespace, made):
            del self._made[meta.uid]  # deleted before it was referenced: make another
            made = None
        if made is None:
            made = f"{meta.name}-token-{''.join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))}"
            secret = Secret()
            secret.metadata.name, secret.metadata.namespace = made, meta.namespace
            self._fill(secret, account)
            try:
                await self.clientset.resource(Secret, meta.namespace).create(secret)
            except StatusError as err:
                if err.reason == "Forbidden":
                    return  # the namespace is terminating
                raise  # AlreadyExists: another name next time
            self._made[meta.uid] = made
            log.info("created token Secret %s/%s for ServiceAccount %s", meta.namespace, made, meta.name)
        new = ServiceAccount()
        new.CopyFrom(account)
        if made not in [r.name for r in new.secrets]:
            new.secrets.add(name=made)
        try:
            await self.clientset.resource(ServiceAccount, meta.namespace).update(new)
        except StatusError as err:
            if err.reason == "NotFound":
                self._made.pop(meta.uid, None)
                return
            raise  # a Conflict: the Secret is made, the reference is added on the retry

    async def _exists(self, namespace: str, name: str) -> bool:
        try:
            await self.clientset.resource(Secret, namespace).get(name)
        except StatusError as err:
            if err.reason == "NotFound":
                return False
            raise
        return True

    async def _delete(self, secret: Secret) -> None:
        try:
            await self.clientset.resource(Secret, secret.metadata.namespace).delete(secret.metadata.name,
                                                                                    uid=secret.metadata.uid)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise
