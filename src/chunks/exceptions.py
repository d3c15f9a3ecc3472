from src.exceptions import NotFound


class ChunkNotFound(NotFound):
    code = "chunk_not_found"
    title = "Chunk not found"
