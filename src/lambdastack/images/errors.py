"""Why an image could not be made ready, in Lambda's words (StateReasonCode + StateReason)."""

from __future__ import annotations

# Lambda's StateReasonCode / LastUpdateStatusReasonCode values for images.
IMAGE_DELETED = "ImageDeleted"
IMAGE_ACCESS_DENIED = "ImageAccessDenied"
INVALID_IMAGE = "InvalidImage"
INTERNAL_ERROR = "InternalError"


class ImageError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Cancelled(Exception):
    """The server is stopping: the pull was abandoned (it resumes at the next start)."""


def not_found(uri: str, detail: str) -> ImageError:
    return ImageError(IMAGE_DELETED, f"Source image {uri} does not exist. Provide a valid source image. ({detail})")


def access_denied(uri: str, detail: str) -> ImageError:
    return ImageError(
        IMAGE_ACCESS_DENIED,
        f"Lambda does not have permission to access the ECR image. Check the ECR permissions. ({uri}: {detail})",
    )


def invalid(uri: str, detail: str) -> ImageError:
    return ImageError(INVALID_IMAGE, f"Source image {uri} is not valid. Provide a valid source image. ({detail})")


def unreachable(uri: str, detail: str) -> ImageError:
    return ImageError(INTERNAL_ERROR, f"Lambda could not fetch the image {uri}: {detail}")
