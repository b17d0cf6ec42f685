"""Building blocks of HMIL: the online re-embedding and class-wise gated attention."""

from hmil.nn.attention import ClassWiseGatedAttention
from hmil.nn.embedding import OnlineReEmbedding
from hmil.nn.heads import ClassWiseLinear, build_head
from hmil.nn.init import kaiming_init_

__all__ = ["ClassWiseGatedAttention", "ClassWiseLinear", "OnlineReEmbedding", "build_head", "kaiming_init_"]
