"""The sealed workload's format: what seals opens, for that try only; damage is named, never opened."""

from __future__ import annotations

import json
import os

import pytest

from ecs_executor.core import envelope as e

IDENTITY = {"dag_id": "d", "task_id": "t", "run_id": "manual__1", "map_index": -1, "try_number": 2}
WORKLOAD = json.dumps({"token": "secret.jwt.value", "ti": dict(IDENTITY, id="0199")})
KEY = e.DataKey(plaintext=os.urandom(32), wrapped=b"wrapped-by-kms", key_arn="arn:aws:kms:x", expires_at=1.0)


def test_sealed_workload_opens_with_its_key_and_context() -> None:
    text = e.seal(WORKLOAD, KEY, e.try_context(IDENTITY))
    sealed = e.parse(text)
    assert sealed.kms_context == dict(e.KMS_CONTEXT)
    assert sealed.context == e.try_context(IDENTITY) | {}
    assert sealed.wrapped == KEY.wrapped
    opened = e.open_sealed(sealed, KEY.plaintext)
    assert opened == WORKLOAD
    assert e.identity_matches(opened, sealed.context)


def test_the_envelope_hides_the_token_and_needs_no_json_escaping() -> None:
    text = e.seal(WORKLOAD, KEY, e.try_context(IDENTITY))
    assert "secret" not in text and "jwt" not in text
    assert json.dumps(text) == f'"{text}"'


def test_each_seal_uses_a_new_nonce() -> None:
    context = e.try_context(IDENTITY)
    assert e.seal(WORKLOAD, KEY, context) != e.seal(WORKLOAD, KEY, context)


def test_an_envelope_moved_to_another_try_does_not_open() -> None:
    sealed = e.parse(e.seal(WORKLOAD, KEY, e.try_context(IDENTITY)))
    moved = e.Sealed(
        sealed.kms_context,
        e.try_context(IDENTITY | {"try_number": 3}),
        sealed.wrapped,
        sealed.nonce,
        sealed.ciphertext,
    )
    with pytest.raises(e.ContextMismatch):
        e.open_sealed(moved, KEY.plaintext)


def test_a_flipped_ciphertext_byte_or_another_key_does_not_open() -> None:
    sealed = e.parse(e.seal(WORKLOAD, KEY, e.try_context(IDENTITY)))
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(e.ContextMismatch):
        e.open_sealed(
            e.Sealed(sealed.kms_context, sealed.context, sealed.wrapped, sealed.nonce, flipped), KEY.plaintext
        )
    with pytest.raises(e.ContextMismatch):
        e.open_sealed(sealed, os.urandom(32))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "starting with 'ecsw1'"),
        ("ecsw2.a.b.c.d.e", "starting with 'ecsw1'"),
        ("ecsw1.a.b.c", "expected 6 dot-separated fields, found 4"),
        ("ecsw1.!!.e30.YQ.AAAAAAAAAAAAAAAA.YQ", "not base64url"),
        ("ecsw1.W10.e30.YQ.AAAAAAAAAAAAAAAA.YQ", "KMS encryption context is not a map"),
        ("ecsw1.e30.e30.YQ.AAAA.YQ", "nonce is 3 bytes"),
    ],
)
def test_a_damaged_envelope_is_named(text: str, says: str) -> None:
    with pytest.raises(e.CorruptEnvelope, match=says.replace("(", r"\(")):
        e.parse(text)


def test_a_workload_of_another_try_fails_the_identity_check() -> None:
    other = json.dumps({"ti": dict(IDENTITY, task_id="other")})
    assert not e.identity_matches(other, e.try_context(IDENTITY))
    assert not e.identity_matches("not json", e.try_context(IDENTITY))


def test_keys_never_show_in_reprs() -> None:
    sealed = e.parse(e.seal(WORKLOAD, KEY, e.try_context(IDENTITY)))
    assert KEY.plaintext.hex() not in repr(KEY) and "wrapped-by-kms" not in repr(KEY)
    assert "b'" not in repr(sealed)
