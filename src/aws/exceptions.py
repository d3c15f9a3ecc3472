from src.exceptions import NotFound, ServiceUnavailable


class ObjectNotFound(NotFound):
    code = "object_not_found"
    title = "Stored object not found"


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    title = "Object storage unavailable"
