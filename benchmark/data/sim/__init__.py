"""Simulated datasets (``panda-sim``, ``bracs-sim`` and their ``-iso`` variants), generated and cached on use.

`benchmark.data.sim.datasets` registers them; `.panda` and `.bracs` draw the slide plans, `.core` the shared
feature space and memmap writer, `.embed` the v2 feature model and `.store` the cache directory.
"""

from benchmark.data.sim.bracs import BracsSimParams
from benchmark.data.sim.datasets import (
    BRACS_EMBEDDING,
    BRACS_HIERARCHY,
    PANDA_EMBEDDING,
    PANDA_HIERARCHY,
    generate_simulated,
    instance_patterns,
    is_simulated,
    load_bracs_sim,
    load_panda_sim,
    sim_cache_dir,
)
from benchmark.data.sim.embed import EmbeddingModel
from benchmark.data.sim.panda import PandaSimParams
from benchmark.data.sim.store import GENERATOR_VERSION

__all__ = [
    "BRACS_EMBEDDING",
    "BRACS_HIERARCHY",
    "GENERATOR_VERSION",
    "PANDA_EMBEDDING",
    "PANDA_HIERARCHY",
    "BracsSimParams",
    "EmbeddingModel",
    "PandaSimParams",
    "generate_simulated",
    "instance_patterns",
    "is_simulated",
    "load_bracs_sim",
    "load_panda_sim",
    "sim_cache_dir",
]
