"""HMIL (Jin et al., IEEE TMI 2025): hierarchical multi-instance learning. Implemented in issue #3."""
