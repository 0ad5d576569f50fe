"""The sealed workload: what the RunTask command carries when ``workload_kms_key`` is set (docs/security.md).

Pure: bytes and strings in and out, no KMS call. The engine seals with a data key it got from KMS; the
worker (``ecs_executor.worker``) unwraps that data key with KMS and opens the envelope here.

One data key serves every try during its lifetime, so KMS's encryption context cannot name the try; it
names only the purpose (``KMS_CONTEXT``), which IAM conditions can require. The try itself (dag, task,
run, map index, try number) is bound as AES-GCM associated data: an envelope copied into another try's
command does not open there.

Text form, all fields base64url without padding (no character JSON escapes, so the override's JSON
costs nothing extra)::

    ecsw1.<kms context JSON>.<try context JSON>.<wrapped data key>.<nonce>.<AES-GCM(zlib(workload))>
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PURPOSE_KEY = "ecs-executor:purpose"
PURPOSE = "airflow-workload"
KMS_CONTEXT: Mapping[str, str] = {PURPOSE_KEY: PURPOSE}
ENVELOPE_PREFIX = "ecsw1"
# The command a workload runs, sealed or not: request/run_task.py sends it in clear, ecs_executor.worker
# exec's it once opened. Defined here, where the worker reads it without importing the executor.
WORKLOAD_COMMAND = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string"]
DATA_KEY_BYTES = 32  # AES-256: KMS GenerateDataKey KeySpec AES_256
NONCE_BYTES = 12  # the AES-GCM nonce size NIST recommends; random per envelope
_FIELDS = 6
_IDENTITY = ("dag_id", "task_id", "run_id", "map_index", "try_number")


class EnvelopeError(ValueError):
    """The envelope cannot be opened; the subclass says why (the worker maps each to an exit code)."""


class CorruptEnvelope(EnvelopeError):
    """Not a readable envelope: truncated, not base64url, an unknown version, or not a workload inside."""


class ContextMismatch(EnvelopeError):
    """The envelope does not authenticate for this try: made for another try, or altered."""


@dataclass(frozen=True)
class DataKey:
    """A KMS data key: the plaintext seals, the wrapped copy travels with every envelope."""

    plaintext: bytes = field(repr=False)
    wrapped: bytes = field(repr=False)
    key_arn: str
    expires_at: float  # time.monotonic() after which it seals nothing more


@dataclass(frozen=True)
class Sealed:
    """An envelope's parts, parsed but not yet opened."""

    kms_context: dict[str, str]
    context: dict[str, str]
    wrapped: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


def try_context(identity: Mapping[str, Any]) -> dict[str, str]:
    """The try's names as strings (``request.run_task.TryIdentity.to_dict()``), plus the purpose."""
    return {name: str(identity[name]) for name in _IDENTITY} | {PURPOSE_KEY: PURPOSE}


def _canonical(mapping: Mapping[str, str]) -> bytes:
    return json.dumps(dict(mapping), sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_KMS_CONTEXT_FIELD = _b64(_canonical(KMS_CONTEXT))  # the same in every envelope


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(workload_json: str, key: DataKey, context: Mapping[str, str], *, nonce: bytes | None = None) -> str:
    """Compress and encrypt one workload for one try; ``nonce`` is for tests (never reuse one)."""
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    aad = _canonical(context)
    ciphertext = AESGCM(key.plaintext).encrypt(nonce, zlib.compress(workload_json.encode(), 9), aad)
    return ".".join(
        (ENVELOPE_PREFIX, _KMS_CONTEXT_FIELD, _b64(aad), _b64(key.wrapped), _b64(nonce), _b64(ciphertext))
    )


def _json_map(data: bytes, what: str) -> dict[str, str]:
    value = json.loads(data)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CorruptEnvelope(f"the {what} is not a map of strings")
    return value


def parse(envelope: str) -> Sealed:
    """Split and decode an envelope; raises ``CorruptEnvelope`` naming what was wrong."""
    parts = envelope.split(".")
    if parts[0] != ENVELOPE_PREFIX:
        raise CorruptEnvelope(f"expected an envelope starting with {ENVELOPE_PREFIX!r}")
    if len(parts) != _FIELDS:
        raise CorruptEnvelope(f"expected {_FIELDS} dot-separated fields, found {len(parts)}")
    try:
        kms_raw, context_raw, wrapped, nonce, ciphertext = (_unb64(p) for p in parts[1:])
        kms_context = _json_map(kms_raw, "KMS encryption context")
        context = _json_map(context_raw, "try context")
    except (binascii.Error, ValueError) as exc:
        if isinstance(exc, CorruptEnvelope):
            raise
        raise CorruptEnvelope(
            f"a field is not base64url-encoded JSON or bytes: {type(exc).__name__}"
        ) from None
    if len(nonce) != NONCE_BYTES:
        raise CorruptEnvelope(f"the nonce is {len(nonce)} bytes, expected {NONCE_BYTES}")
    return Sealed(kms_context, context, wrapped, nonce, ciphertext)


def open_sealed(sealed: Sealed, plaintext_key: bytes) -> str:
    """The workload JSON; ``ContextMismatch`` if the ciphertext or its try context was changed."""
    try:
        compressed = AESGCM(plaintext_key).decrypt(
            sealed.nonce, sealed.ciphertext, _canonical(sealed.context)
        )
    except InvalidTag:
        raise ContextMismatch(
            "the workload does not authenticate under its try context (made for another try, or altered)"
        ) from None
    except ValueError as exc:  # a data key of the wrong length
        raise CorruptEnvelope(f"the data key cannot open AES-GCM: {exc}") from None
    try:
        return zlib.decompress(compressed).decode()
    except (zlib.error, UnicodeDecodeError):
        raise CorruptEnvelope("the decrypted workload is not compressed UTF-8 text") from None


def identity_matches(workload_json: str, context: Mapping[str, str]) -> bool:
    """The decrypted workload's task instance is the try its context names (a second check beside the AAD)."""
    try:
        ti = json.loads(workload_json)["ti"]
        return all(str(ti[name]) == context.get(name) for name in _IDENTITY)
    except (ValueError, KeyError, TypeError):
        return False
