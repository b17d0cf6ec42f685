"""Building blocks of HMIL: the online re-embedding and class-wise gated attention."""

from hmil.nn.attention import ClassWiseGatedAttention
from hmil.nn.embedding import OnlineReEmbedding
from hmil.nn.init import kaiming_init_

__all__ = ["ClassWiseGatedAttention", "OnlineReEmbedding", "kaiming_init_"]
