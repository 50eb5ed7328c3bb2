"""12345 hotline models: near-duplicate clustering, surges and cues (docs/models/hotline.md).

``HotlineModel`` is what the flow registers; ``DuplicateClusterer``, ``SurgeDetector`` and
``extract_cues`` are usable alone.
"""

from models.hotline.cues import extract_cues
from models.hotline.dedup import DedupConfig, DedupResult, DuplicateClusterer
from models.hotline.model import HotlineConfig, HotlineModel, HotlineState
from models.hotline.surge import SurgeConfig, SurgeDetector, SurgeStatus

__all__ = [
    "DedupConfig",
    "DedupResult",
    "DuplicateClusterer",
    "HotlineConfig",
    "HotlineModel",
    "HotlineState",
    "SurgeConfig",
    "SurgeDetector",
    "SurgeStatus",
    "extract_cues",
]
