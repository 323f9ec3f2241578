"""The product's data converter: pydantic payloads, encrypted by `EncryptionCodec`, failures encoded too.

Every client and worker the product creates uses it (starter.connect.connect: CLI, API, admin UI, demo,
`make run`; the worker). Failure messages and stack traces move into an encoded attribute
(`DefaultFailureConverterWithEncodedAttributes`), so the codec encrypts them like any payload.
"""

from __future__ import annotations

from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from privacy.codec import EncryptionCodec
from privacy.data_keys import PoolSource
from privacy.keyring import CodecSettings, KeyProvider


def data_converter(
    keys: KeyProvider | None,
    pool: PoolSource | None,
    settings: CodecSettings | None = None,
) -> DataConverter:
    """The converter for `keys` (None: no encryption, the plain pydantic converter with encoded failures,
    for tools that must read what is stored as it is). `pool` (or a coroutine function opening one) holds
    the loans' data keys; None: payloads of loans can be neither written nor read (a clear
    `DataKeyUnavailable`), others work."""
    codec = None
    if keys is not None:
        settings = settings or CodecSettings()
        codec = EncryptionCodec(
            keys,
            pool,
            cache_seconds=settings.codec_key_cache_seconds,
            cache_size=settings.codec_key_cache_size,
        )
    return DataConverter(
        payload_converter_class=PydanticPayloadConverter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
