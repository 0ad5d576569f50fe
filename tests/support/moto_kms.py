"""moto's KMS as strict as KMS about key states, for the tests that need a key KMS refuses to use.

moto 5.2.5 decrypts with a key that is disabled or pending deletion. KMS does not: Decrypt answers
``DisabledException`` for a disabled key and ``KMSInvalidStateException`` for one pending deletion (the
key state table of the KMS Developer Guide). ``ThreadedMotoServer`` serves from the test's own process,
so patching its backend changes what the server answers on the wire, in KMS's JSON error shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def kms_key_states_enforced() -> Iterator[None]:
    """While active, Decrypt refuses keys that are not Enabled, as KMS does."""
    from moto.core.exceptions import JsonRESTError
    from moto.kms.models import KmsBackend
    from moto.kms.utils import _deserialize_ciphertext_blob

    original = KmsBackend.decrypt

    def decrypt(self: Any, ciphertext_blob: bytes, encryption_context: dict[str, str], key_id: Any = None):
        key = None
        with contextlib.suppress(Exception):  # not moto's blob: the original answers InvalidCiphertext
            key = self.keys.get(_deserialize_ciphertext_blob(ciphertext_blob).key_id)
        if key is not None and key.key_state == "Disabled":
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
        if key is not None and key.key_state == "PendingDeletion":
            raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        return original(self, ciphertext_blob, encryption_context, key_id)

    KmsBackend.decrypt = decrypt  # type: ignore[method-assign]
    try:
        yield
    finally:
        KmsBackend.decrypt = original  # type: ignore[method-assign]


def new_data_key(kms: Any, key_id: str) -> Any:
    """A data key as the engine gets one: GenerateDataKey, AES_256, the fixed KMS context."""
    from ecs_executor.core.envelope import KMS_CONTEXT, DataKey

    answer = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=dict(KMS_CONTEXT))
    return DataKey(answer["Plaintext"], answer["CiphertextBlob"], answer["KeyId"], float("inf"))


def seal_workload(workload: Any, key: Any) -> str:
    """``workload`` (an Airflow ExecuteTask) sealed for its own try, as the launcher seals it."""
    from ecs_executor.core.envelope import seal, try_context
    from ecs_executor.request.run_task import TryIdentity

    identity = TryIdentity.from_key(workload.ti)
    return seal(workload.model_dump_json(), key, try_context(identity.to_dict()))
