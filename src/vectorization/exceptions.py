from src.exceptions import AppError, NotFound, PayloadTooLarge


class ProviderUnavailable(AppError):
    """The embedding provider cannot be reached or refused the request (job-level error)."""

    status_code = 503
    code = "provider_unavailable"
    title = "Embedding provider unavailable"


class ProviderRequestRejected(AppError):
    status_code = 502
    code = "provider_rejected"
    title = "The embedding provider rejected the request"


class DimensionMismatch(AppError):
    status_code = 422
    code = "dimension_mismatch"
    title = "Vector dimension does not match the model"


class InvalidVector(AppError):
    status_code = 422
    code = "invalid_vector"
    title = "Vector contains NaN or infinite values"


class BatchTooLarge(PayloadTooLarge):
    code = "batch_too_large"
    title = "Too many items in one request"


class JobNotFound(NotFound):
    code = "job_not_found"
    title = "Vectorization job not found"
