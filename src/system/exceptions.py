from src.exceptions import ServiceUnavailable


class NotReady(ServiceUnavailable):
    code = "not_ready"
    title = "Service not ready"
