"""Bucket configurations Shoal has no way to set, read as S3 reads them on a bucket
that has none: lifecycle, replication, Object Lock and public access block answer their
"not found" errors; request payment, transfer acceleration, logging and notifications
their empty or default documents. Tools that read every configuration of a bucket
(terraform's provider does, on each plan) then see a plain bucket instead of 501s.
Setting any of them stays 501 NotImplemented (gateway/router.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway.errors import S3Error
from gateway.xmlio import xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

# Sub-resource -> (operation, S3's error for "none", or the document S3 answers).
NOT_FOUND = {
    "lifecycle": ("GetBucketLifecycleConfiguration", "NoSuchLifecycleConfiguration",
                  "The lifecycle configuration does not exist"),
    "replication": ("GetBucketReplication", "ReplicationConfigurationNotFoundError",
                    "The replication configuration was not found"),
    "object-lock": ("GetObjectLockConfiguration", "ObjectLockConfigurationNotFoundError",
                    "Object Lock configuration does not exist for this bucket"),
    "publicAccessBlock": ("GetPublicAccessBlock", "NoSuchPublicAccessBlockConfiguration",
                          "The public access block configuration was not found"),
}
DOCUMENTS = {
    "requestPayment": ("GetBucketRequestPayment", "RequestPaymentConfiguration",
                       [("Payer", "BucketOwner")]),
    "accelerate": ("GetBucketAccelerateConfiguration", "AccelerateConfiguration", []),
    "logging": ("GetBucketLogging", "BucketLoggingStatus", []),
    "notification": ("GetBucketNotificationConfiguration", "NotificationConfiguration", []),
}
OPERATION_OF = {name: spec[0] for name, spec in (NOT_FOUND | DOCUMENTS).items()}
_SUBRESOURCE_OF = {operation: name for name, operation in OPERATION_OF.items()}


async def read(req: S3Request) -> Response:
    """GET ?{sub-resource} of one of the configurations above."""
    await req.catalog.bucket(req.bucket)
    name = _SUBRESOURCE_OF[req.operation]  # the one the router chose
    if name in NOT_FOUND:
        _, code, message = NOT_FOUND[name]
        raise S3Error(code, message, BucketName=req.bucket)
    _, root, children = DOCUMENTS[name]
    return xml_response(root, children)
