"""HMIL configuration: the two presets, the ablation switches and the harness loss terms (hmil-method.md §9, §13).

A preset is chosen by the registered model name — ``hmil`` (paper, the default) or ``hmil-code``
(exactly what the released code optimises) — and expands into explicit config fields, each of which can
be overridden (``--set model.hba_form=ce_on_probs``). Every field is logged with the run.

Total loss (computed by the harness from the `LossTerm`s returned by `loss_terms`)::

    paper:  L = fine_ce + β_e (coarse_ce + λ_ham·ham + λ_hba·hba_nll) + (1 − β_e) supcon,  β_e = 1 − e/E
    code:   L = α_e coarse_ce + fine_ce + hba_ce_on_probs + (1 − α_e) supcon_(cosine τ, τ/0.1, ÷B)
            + 0·ham (computed and logged, not optimised),                               α_e = 1 − (e/E)²
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from benchmark.core.config import SCHEDULES, LossTerm
from benchmark.core.errors import ConfigError
from hmil.losses import HBA_FORMS, SCL_POSITIVES, TAU_MODES

__all__ = [
    "HEADS",
    "INITS",
    "LADDER",
    "PRESETS",
    "SCL_SCALES",
    "HMILCodeConfig",
    "HMILConfig",
    "HMILPerClassConfig",
    "loss_terms",
]

HEADS = ("shared", "per_class")
INITS = ("kaiming", "torch")
SCL_SCALES = ("paper", "code")


@dataclass(frozen=True)
class HMILConfig:
    """Hyperparameters of HMIL; the defaults are the "paper" preset.

    Attributes:
        preset: the preset these defaults came from; fixed by the model name (recorded with the run).
        use_coarse_branch: build the coarse attention branch and head. Off: a flat fine-only class-wise
            gated-attention model, with no coarse_logits and no coarse_ce, ham or hba term.
        use_coarse_ce: optimise the coarse head's cross-entropy (needs the coarse branch).
        use_ham: compute the HAM term and add it with weight ham_weight (needs the coarse branch).
        use_hba: compute the HBA term and add it with weight hba_weight (dropped with the coarse branch).
        use_scl: compute SupCon and add it with weight scl_weight.
        curriculum: schedule the weights with β_e; off = fixed weights (every group at its λ, 1:1).
        schedule: β_e: "linear" 1 − e/E, "quadratic" 1 − (e/E)² or "constant" β = constant_beta.
        constant_beta: β for schedule="constant" (the ladder's 0.5).
        schedule_alignment: HAM and HBA sit under β (paper); off = constant weight 1·λ (code).
        coarse_ce_weight, ham_weight, hba_weight, scl_weight: λ of each term, before the schedule.
        hba_form: "nll" −log max((Mᵀp_f)[y_c], 1e-8), or "ce_on_probs" (released code).
        scl_tau_mode: "fixed" τ = scl_tau, or "cosine" scl_tau_max → scl_tau (at E/2) → scl_tau_max.
        scl_tau: fixed τ, or the minimum of the cosine schedule.
        scl_tau_max: maximum of the cosine schedule.
        scl_scale: "paper" — SupCon as written in the paper (factor 1); "code" — the released code's
            effective scale, × τ/0.1 and ÷ the number of bags (15–130× smaller at 64 bags per step).
        scl_positives: "all_rows" (same-label rows incl. the bag's own other rows) or "gt_row".
        hidden_dim, coarse_dim, fine_dim: re-embedding widths d → 256 → 1024 → 256.
        coarse_attention_dim, fine_attention_dim: gated-attention hidden widths (256, 64).
        dropout: dropout in the attention branches (0 in HMIL; 0.25 only as a named variant).
        head: "shared" — one scalar head per branch shared by all classes, z[k] = w·B[k] + b (the paper and
            the released code); "per_class" — z[k] = w_k·B[k] + b_k (not in the paper; ``hmil-pc``).
        init: "kaiming" — Kaiming-normal weights and zero biases on every linear layer (released code);
            "torch" — PyTorch's default layer initialisation (not in the paper; ``hmil-pc``).
    """

    PRESET: ClassVar[str] = "paper"

    preset: str = "paper"
    use_coarse_branch: bool = True
    use_coarse_ce: bool = True
    use_ham: bool = True
    use_hba: bool = True
    use_scl: bool = True
    curriculum: bool = True
    schedule: str = "linear"
    constant_beta: float = 0.5
    schedule_alignment: bool = True
    coarse_ce_weight: float = 1.0
    ham_weight: float = 1.0
    hba_weight: float = 1.0
    scl_weight: float = 1.0
    hba_form: str = "nll"
    scl_tau_mode: str = "fixed"
    scl_tau: float = 0.1
    scl_tau_max: float = 1.0
    scl_scale: str = "paper"
    scl_positives: str = "all_rows"
    hidden_dim: int = 256
    coarse_dim: int = 1024
    fine_dim: int = 256
    coarse_attention_dim: int = 256
    fine_attention_dim: int = 64
    dropout: float = 0.0
    head: str = "shared"
    init: str = "kaiming"

    def __post_init__(self) -> None:
        if self.preset != self.PRESET:
            raise ConfigError(
                f"model.preset={self.preset!r}: the preset is chosen by the model name (hmil = paper, "
                f"hmil-code = code), here {self.PRESET!r}; pick the model, then override single switches."
            )
        for key, allowed in (
            ("schedule", SCHEDULES),
            ("hba_form", HBA_FORMS),
            ("scl_tau_mode", TAU_MODES),
            ("scl_positives", SCL_POSITIVES),
            ("scl_scale", SCL_SCALES),
            ("head", HEADS),
            ("init", INITS),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"model.{key}={getattr(self, key)!r} is not valid; choose one of {list(allowed)}."
                )
        for key in ("coarse_ce_weight", "ham_weight", "hba_weight", "scl_weight"):
            if not getattr(self, key) >= 0:
                raise ConfigError(
                    f"model.{key} must be ≥ 0, got {getattr(self, key)}; use 0 to keep a term unoptimised."
                )
        if not 0.0 <= self.constant_beta <= 1.0:
            raise ConfigError(f"model.constant_beta must be in [0, 1], got {self.constant_beta}.")
        for key in ("scl_tau", "scl_tau_max"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ConfigError(f"model.{key} must be > 0, got {value}.")
        if self.scl_tau_mode == "cosine" and self.scl_tau_max < self.scl_tau:
            raise ConfigError(
                f"model.scl_tau_max={self.scl_tau_max} is below model.scl_tau={self.scl_tau}; the cosine "
                "schedule runs from scl_tau_max down to scl_tau."
            )
        for key in ("hidden_dim", "coarse_dim", "fine_dim", "coarse_attention_dim", "fine_attention_dim"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be ≥ 1, got {getattr(self, key)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}.")

    # The SupCon scale as the loss function takes it (hmil.losses.supcon_loss).
    @property
    def scl_tau_base(self) -> float | None:
        """τ_base of the factor τ/τ_base: None (factor 1, paper) or the released code's 0.1."""
        return 0.1 if self.scl_scale == "code" else None

    @property
    def scl_divide_by_batch(self) -> bool:
        """Whether SupCon is divided by the number of bags (released code)."""
        return self.scl_scale == "code"

    # Effective switches: terms that need the coarse branch disappear with it.
    @property
    def coarse_ce_active(self) -> bool:
        return self.use_coarse_branch and self.use_coarse_ce

    @property
    def ham_active(self) -> bool:
        return self.use_coarse_branch and self.use_ham

    @property
    def hba_active(self) -> bool:
        return self.use_coarse_branch and self.use_hba


@dataclass(frozen=True)
class HMILCodeConfig(HMILConfig):
    """The "code" preset: the loss the released code optimises (fields as in `HMILConfig`)."""

    PRESET: ClassVar[str] = "code"

    preset: str = "code"
    schedule: str = "quadratic"
    schedule_alignment: bool = False
    ham_weight: float = 0.0
    hba_form: str = "ce_on_probs"
    scl_tau_mode: str = "cosine"
    scl_scale: str = "code"


@dataclass(frozen=True)
class HMILPerClassConfig(HMILConfig):
    """``hmil-pc``: the paper preset's losses with per-class heads and PyTorch's default init (not in the paper).

    HMIL's shared scalar head makes class evidence a contrast between attention rows of the same bag; when
    the label-relevant pattern is a small share of the feature variance that contrast is mostly noise
    (docs/hmil.md §7). A per-class head gives each class its own weight vector and bias, as every flat MIL
    baseline has.
    """

    head: str = "per_class"
    init: str = "torch"


def _preset_fields(cls: type[HMILConfig]) -> dict[str, Any]:
    architecture = {
        "hidden_dim",
        "coarse_dim",
        "fine_dim",
        "coarse_attention_dim",
        "fine_attention_dim",
        "dropout",
        "head",
        "init",
    }
    return {k: v for k, v in dataclasses.asdict(cls()).items() if k not in architecture}


#: The switches each preset resolves to (§9); the two config classes' defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": _preset_fields(HMILConfig),
    "code": _preset_fields(HMILCodeConfig),
}

#: The ablation ladder (§13) as overrides of the ``hmil`` (paper) model; rung 9 is the ``hmil-code`` model.
LADDER: dict[str, dict[str, Any]] = {
    "1-flat": {"use_coarse_branch": False, "use_scl": False},
    "2-dual": {"use_ham": False, "use_hba": False, "use_scl": False, "curriculum": False},
    "3-ham": {"use_hba": False, "use_scl": False, "curriculum": False},
    "4-hba": {"use_scl": False, "curriculum": False},
    "5-scl": {"curriculum": False},
    "6-full": {},
    "7-quadratic": {"schedule": "quadratic"},
    "7-constant": {"schedule": "constant", "constant_beta": 0.5},
    "8-cosine-tau": {"scl_tau_mode": "cosine"},
}


def loss_terms(config: HMILConfig) -> tuple[LossTerm, ...]:
    """The harness loss terms for a config: total = Σ weight · s(e/E) · term.

    With the curriculum on and a linear/quadratic schedule, the β group (coarse_ce, and ham/hba when
    ``schedule_alignment``) uses s = β_e and SupCon uses s = 1 − β_e (``complement``). A constant β is
    folded into the weights (β·λ and (1 − β)·λ with a constant schedule), so no harness change is needed.
    With the curriculum off every term has its λ and a constant schedule.
    """
    if not config.curriculum:
        schedule, beta, anti_beta, complement = "constant", 1.0, 1.0, False
    elif config.schedule == "constant":
        schedule, beta, anti_beta, complement = (
            "constant",
            config.constant_beta,
            1.0 - config.constant_beta,
            False,
        )
    else:
        schedule, beta, anti_beta, complement = config.schedule, 1.0, 1.0, True

    terms = [LossTerm("fine_ce")]
    if config.coarse_ce_active:
        terms.append(LossTerm("coarse_ce", config.coarse_ce_weight * beta, schedule))
    for name, active, weight in (
        ("ham", config.ham_active, config.ham_weight),
        ("hba", config.hba_active, config.hba_weight),
    ):
        if active:
            if config.schedule_alignment:
                terms.append(LossTerm(name, weight * beta, schedule))
            else:
                terms.append(LossTerm(name, weight))
    if config.use_scl:
        terms.append(LossTerm("supcon", config.scl_weight * anti_beta, schedule, complement=complement))
    return tuple(terms)
