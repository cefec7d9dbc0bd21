"""controller_manager/serviceaccount_tokens.py: the signer (RSA and EC
keys, Kubernetes' legacy claims and kid, a key file generated with its
public half and loaded again) and the controller on the in-memory
clientset: every ServiceAccount gets one referenced token Secret whose
JWT verifies with the public key; a hand-made token Secret is filled in;
tokens of a deleted or re-created account are deleted; a lagging cache
does not make a second token."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from controller_manager.serviceaccount_tokens import (
    ISSUER,
    NAME_ANNOTATION,
    TOKEN_TYPE,
    UID_ANNOTATION,
    TokensController,
    TokenSigner,
)
from proto import core_pb2

from ._cluster import Harness, meta, settle

SA = core_pb2.ServiceAccount
Secret = core_pb2.Secret


def decode(token: str, signer: TokenSigner) -> dict[str, object]:
    return jwt.decode(token, signer.public_pem(), algorithms=[signer.algorithm], options={"verify_aud": False})


def test_legacy_token_claims_and_kid() -> None:
    signer = TokenSigner.generate()
    token = signer.legacy_token("ns", "builder", "uid-1", "builder-token-abcde")
    claims = decode(token, signer)
    assert claims == {
        "iss": ISSUER, "sub": "system:serviceaccount:ns:builder",
        "kubernetes.io/serviceaccount/namespace": "ns",
        "kubernetes.io/serviceaccount/secret.name": "builder-token-abcde",
        "kubernetes.io/serviceaccount/service-account.name": "builder",
        "kubernetes.io/serviceaccount/service-account.uid": "uid-1"}
    der = serialization.load_pem_public_key(signer.public_pem()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": kid, "typ": "JWT"}
    other = TokenSigner.generate()
    with pytest.raises(jwt.InvalidSignatureError):
        decode(token, other)


def test_key_file_is_generated_once_and_loaded_after(tmp_path: Path) -> None:
    path = tmp_path / "pki" / "sa.key"
    first = TokenSigner.from_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert Path(f"{path}.pub").read_bytes() == first.public_pem()
    again = TokenSigner.from_file(path)
    assert again.kid == first.kid
    assert decode(first.legacy_token("a", "b", "c", "d"), again)["sub"] == "system:serviceaccount:a:b"


def test_ec_keys_sign_es256(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    signer = TokenSigner.from_file(path)
    assert signer.algorithm == "ES256"
    assert decode(signer.legacy_token("a", "b", "c", "d"), signer)["iss"] == ISSUER


def tokens(h: Harness, account: str) -> list[Secret]:
    return [s for s in h.cs.objects(Secret, "ns")
            if s.type == TOKEN_TYPE and s.metadata.annotations.get(NAME_ANNOTATION) == account]


async def test_every_account_gets_one_referenced_token_that_verifies(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n...\n")
    async with Harness(TokensController, root_ca_file=str(ca)) as h:
        h.cs.hold_watches("secrets")  # the cache will not see the token Secret for a while
        sa = await h.create(meta(SA(), "builder", "ns"))
        await h.advance(3)
        h.cs.release_watches()
        await h.advance(3)
        [secret] = tokens(h, "builder")
        assert secret.metadata.name.startswith("builder-token-")
        assert secret.metadata.annotations[UID_ANNOTATION] == sa.metadata.uid
        assert secret.data["namespace"] == b"ns" and secret.data["ca.crt"] == ca.read_bytes()
        stored = h.get(SA, "ns", "builder")
        assert stored is not None and [r.name for r in stored.secrets] == [secret.metadata.name]
        signer = h.controller().signer
        claims = decode(secret.data["token"].decode(), signer)
        assert claims["sub"] == "system:serviceaccount:ns:builder"
        assert claims["kubernetes.io/serviceaccount/secret.name"] == secret.metadata.name


async def test_a_hand_made_token_secret_is_filled_in() -> None:
    async with Harness(TokensController) as h:
        sa = await h.create(meta(SA(), "ci", "ns"))
        manual = meta(Secret(), "ci-long-lived", "ns")
        manual.type = TOKEN_TYPE
        manual.metadata.annotations[NAME_ANNOTATION] = "ci"
        await h.create(manual)
        filled = h.get(Secret, "ns", "ci-long-lived")
        assert filled is not None and filled.metadata.annotations[UID_ANNOTATION] == sa.metadata.uid
        claims = decode(filled.data["token"].decode(), h.controller().signer)
        assert claims["kubernetes.io/serviceaccount/secret.name"] == "ci-long-lived"


async def test_tokens_of_a_deleted_or_re_created_account_are_deleted() -> None:
    async with Harness(TokensController) as h:
        await h.create(meta(SA(), "app", "ns"))
        [first] = tokens(h, "app")
        await h.client(SA, "ns").delete("app")
        await settle()
        assert not tokens(h, "app")

        await h.create(meta(SA(), "app", "ns"))
        [second] = tokens(h, "app")
        assert second.metadata.name != first.metadata.name
        stale = meta(Secret(), "app-token-stale", "ns")
        stale.type = TOKEN_TYPE
        stale.metadata.annotations.update({NAME_ANNOTATION: "app", UID_ANNOTATION: "an-earlier-app"})
        await h.create(stale)
        assert [s.metadata.name for s in tokens(h, "app")] == [second.metadata.name]
