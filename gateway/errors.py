"""S3 errors: one exception type, one table of codes, one renderer.

Every failure a client can see is raised as ``S3Error(code, message)``; the
status comes from ``STATUS`` so a code can never be sent with the wrong one.
``render`` turns it into the XML body S3 clients parse.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.responses import Response

STATUS: dict[str, int] = {
    "AccessControlListNotSupported": 400,
    "AccessDenied": 403,
    "AccessForbidden": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BadRequest": 400,
    "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "ConditionalRequestConflict": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "IncorrectNumberOfFilesInPostRequest": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidChunkSizeError": 403,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartNumber": 416,
    "InvalidPartOrder": 400,
    "InvalidPolicyDocument": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "InvalidStorageClass": 400,
    "InvalidTag": 400,
    "KeyTooLongError": 400,
    "MalformedACLError": 400,
    "MalformedPolicy": 400,
    "MalformedPOSTRequest": 400,
    "MalformedXML": 400,
    "MaxMessageLengthExceeded": 400,
    "MaxPostPreDataLengthExceededError": 400,
    "MetadataTooLarge": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "MissingSecurityHeader": 400,
    "NoSuchBucket": 404,
    "NoSuchBucketPolicy": 404,
    "NoSuchCORSConfiguration": 404,
    "NoSuchKey": 404,
    "NoSuchLifecycleConfiguration": 404,
    "NoSuchPublicAccessBlockConfiguration": 404,
    "NoSuchTagSet": 404,
    "NoSuchUpload": 404,
    "NoSuchVersion": 404,
    "NoSuchWebsiteConfiguration": 404,
    "NotImplemented": 501,
    "ObjectLockConfigurationNotFoundError": 404,
    "PreconditionFailed": 412,
    "ReplicationConfigurationNotFoundError": 404,
    "RequestHeaderSectionTooLarge": 400,
    "RequestTimeTooSkewed": 403,
    "ServerSideEncryptionConfigurationNotFoundError": 404,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "SlowDown": 503,
    "XAmzContentSHA256Mismatch": 400,
}


class S3Error(Exception):
    """An error the client sees as an S3 XML body with the status from STATUS."""

    def __init__(self, code: str, message: str = "", **fields: str) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown S3 error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message or code
        self.fields = fields  # extra XML elements, e.g. BucketName, Key

    @property
    def status(self) -> int:
        return STATUS[self.code]


def render(err: S3Error, resource: str = "", request_id: str = "") -> Response:
    """The S3 XML error document for ``err``; HEAD responses drop the body upstream."""
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in err.fields.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{err.code}</Code><Message>{escape(err.message)}</Message>"
        f"{extra}<Resource>{escape(resource)}</Resource>"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return Response(
        body,
        status_code=err.status,
        media_type="application/xml",
        headers={"x-amz-request-id": request_id},
    )
