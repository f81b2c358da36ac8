"""Errors with Lambda's wire identity.

Every layer raises these; the API layer turns them into the rest-json error format that
botocore parses (`x-amzn-ErrorType`, a `Type` member and the message member under the
casing the model's error shape declares). The HTTP status comes from the botocore model
when the shape is modeled; the `status` here is the fallback for unmodeled codes.
"""

from __future__ import annotations

from typing import Any


class LambdaError(Exception):
    """An error that Lambda reports to the caller with a code, a status and a message."""

    code: str = "ServiceException"
    status: int = 500
    fault: str = "User"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **members: Any) -> None:
        super().__init__(message)
        self.message = message
        self.members = members
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"{self.code}({self.message!r})"


def _error(code: str, status: int, fault: str = "User") -> type[LambdaError]:
    return type(code, (LambdaError,), {"code": code, "status": status, "fault": fault})


InvalidParameterValue = _error("InvalidParameterValueException", 400)
Validation = _error("ValidationException", 400)
InvalidRequestContent = _error("InvalidRequestContentException", 400)
ResourceNotFound = _error("ResourceNotFoundException", 404)
ResourceConflict = _error("ResourceConflictException", 409)
PreconditionFailed = _error("PreconditionFailedException", 412)
RequestTooLarge = _error("RequestTooLargeException", 413)
RequestEntityTooLarge = _error("RequestEntityTooLargeException", 413)
UnsupportedMediaType = _error("UnsupportedMediaTypeException", 415)
TooManyRequests = _error("TooManyRequestsException", 429)
CodeStorageExceeded = _error("CodeStorageExceededException", 400)
ProvisionedConcurrencyConfigNotFound = _error("ProvisionedConcurrencyConfigNotFoundException", 404)
CodeSigningConfigNotFound = _error("CodeSigningConfigNotFoundException", 404)
CodeVerificationFailed = _error("CodeVerificationFailedException", 400)
EFSMountFailure = _error("EFSMountFailureException", 403)
PolicyLengthExceeded = _error("PolicyLengthExceededException", 400)
ResourceInUse = _error("ResourceInUseException", 400)
ResourceNotReady = _error("ResourceNotReadyException", 502, "Service")
InvalidRuntime = _error("InvalidRuntimeException", 502, "Service")
InvalidZipFile = _error("InvalidZipFileException", 502, "Service")
ServiceError = _error("ServiceException", 500, "Service")
NotImplementedOperation = _error("NotImplementedException", 501, "Service")
UnknownOperation = _error("UnknownOperationException", 404)
AccessDenied = _error("AccessDeniedException", 403)
SnapStartException = _error("SnapStartException", 400)
SnapStartNotReady = _error("SnapStartNotReadyException", 409)
SnapStartTimeout = _error("SnapStartTimeoutException", 408)
InvalidSignature = _error("InvalidSignatureException", 403)
UnrecognizedClient = _error("UnrecognizedClientException", 403)

# API Gateway's errors (the apigatewayv2 API): the same wire format, other names.
BadRequest = _error("BadRequestException", 400)
NotFound = _error("NotFoundException", 404)
Conflict = _error("ConflictException", 409)

# EventBridge's errors (the json protocol: every error is a 400).
RuleNotFound = _error("ResourceNotFoundException", 400)
InvalidEventPattern = _error("InvalidEventPatternException", 400)
EventsLimitExceeded = _error("LimitExceededException", 400)

# CloudWatch Logs' errors (the json protocol: every error is a 400).
LogsResourceNotFound = _error("ResourceNotFoundException", 400)
ResourceAlreadyExists = _error("ResourceAlreadyExistsException", 400)
InvalidParameter = _error("InvalidParameterException", 400)
