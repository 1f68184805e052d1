"""Small helpers shared by the S3 compatibility tests (no stand-ins for Shoal parts)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def error_of(call, *args, **kwargs) -> tuple[str, int]:  # noqa: ANN001
    """(S3 error code, HTTP status) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def error_doc(call, *args, **kwargs) -> dict:  # noqa: ANN001
    """The parsed error (Code, Message and S3's extra fields) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return {**info.value.response["Error"],
            "Status": info.value.response["ResponseMetadata"]["HTTPStatusCode"]}
