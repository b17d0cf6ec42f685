"""HMIL (Jin et al., IEEE TMI 2025): hierarchical multi-instance learning, re-implemented from its equations.

* `hmil.model` — the `HMIL` model; registers ``hmil`` (paper preset) and ``hmil-code`` (released-code preset).
* `hmil.presets` — `HMILConfig`, `HMILCodeConfig`, the ablation ladder and the harness loss terms.
* `hmil.losses` — HAM, HBA and supervised contrastive losses.
* `hmil.nn` — online re-embedding and class-wise gated attention.

See docs/hmil.md for the equations and every deviation from the paper and the released code.
"""
