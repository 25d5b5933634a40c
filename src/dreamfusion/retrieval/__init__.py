"""The toy world's retrieval model: the analogue of CLIP for R-precision (paper Table 1)."""
from .model import CAPTIONS, ToyRetrieval, load_default

__all__ = ["CAPTIONS", "ToyRetrieval", "load_default"]
