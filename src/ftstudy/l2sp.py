"""L2-SP regularisation (Li, Grandvalet and Davoine, ICML 2018, arXiv 1802.01483): fine-tune near the start.

The loss trained is ``task + lambda * ||theta - theta_base||^2``: the squared L2 distance of the trainable weights
from the weights training started from (the base model), summed over every trainable tensor and element, with
``lambda`` = ``training.l2sp`` (0 = off). AdamW's weight decay is kept as it is (it pulls towards zero; L2-SP pulls
towards the start, through the gradient, so Adam's per-weight scaling applies to it).

- **Full fine-tuning:** each trainable parameter against a copy of its starting value, taken before training
  (:func:`start_point`; one extra copy of the trainable weights in memory). A resumed run loads its checkpoint
  after that copy, so the anchor is still the base.
- **LoRA:** the trainable tensors are the adapters' A and B; what they change in the model is each adapted
  weight's merged delta ``B @ A * scaling``, peft's ``LoraLayer.get_delta_weight`` (the delta that merging would
  add, computed without merging in place), so the penalty is ``sum ||B @ A * scaling||_F^2`` over the adapted
  weights. It is 0 at the start (B = 0). Trainable tensors outside the adapters (none in the study's LoRA
  settings) are anchored as in full fine-tuning.

The penalty is computed in float32 outside autocast. :class:`L2SPLoss` wraps the variant's loss and keeps the
task loss and the penalty of every training step apart (:class:`LossParts`), for train_log.csv's ``task_loss``
and ``l2sp_penalty`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CITATION = """@inproceedings{li2018explicit,
    title={Explicit Inductive Bias for Transfer Learning with Convolutional Networks},
    author={Li, Xuhong and Grandvalet, Yves and Davoine, Franck},
    booktitle={Proceedings of the 35th International Conference on Machine Learning},
    year={2018},
    url={https://arxiv.org/abs/1802.01483}
}"""


@dataclass
class StartPoint:
    """What the penalty measures against: (trainable parameter, copy of its starting value) pairs, and the peft
    LoRA layers whose merged delta is penalised."""

    anchored: list[tuple[torch.nn.Parameter, torch.Tensor]]
    lora_layers: list


def start_point(model: torch.nn.Module) -> StartPoint:
    """The starting point of ``model`` as it is now (call before training): peft ``LoraLayer`` modules, and a
    detached copy of every other trainable parameter (same device and dtype)."""
    from peft.tuners.lora import LoraLayer

    lora_layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    in_adapters = {id(p) for m in lora_layers for d in (m.lora_A, m.lora_B) for p in d.parameters()}
    anchored = [(p, p.detach().clone()) for p in model.parameters() if p.requires_grad and id(p) not in in_adapters]
    return StartPoint(anchored, lora_layers)


def penalty(start: StartPoint) -> torch.Tensor:
    """``||theta - theta_base||^2`` (scalar, float32): the squared merged delta ``B @ A * scaling`` of every
    active LoRA adapter, plus the squared difference of every anchored parameter to its start. Differentiable."""
    terms = []
    for layer in start.lora_layers:
        for name in layer.active_adapters:
            if name in layer.lora_A:
                terms.append(layer.get_delta_weight(name).float().pow(2).sum())
    for p, p0 in start.anchored:
        terms.append((p.float() - p0.float()).pow(2).sum())
    if not terms:
        return torch.zeros((), dtype=torch.float32)
    return torch.stack(terms).sum()


class LossParts:
    """Running sums of the task loss and the penalty over the training steps since the last :meth:`take`
    (detached device tensors: no host sync per step)."""

    def __init__(self):
        self.task = self.penalty = None
        self.steps = 0

    def add(self, task: torch.Tensor, pen: torch.Tensor) -> None:
        """Add one step's task loss and penalty term (``lambda * ||theta - theta_base||^2``), both scalars."""
        self.task = task if self.task is None else self.task + task
        self.penalty = pen if self.penalty is None else self.penalty + pen
        self.steps += 1

    def take(self) -> tuple[float, float]:
        """(mean task loss, mean penalty term) since the last call, and reset; (nan, nan) after no step."""
        if not self.steps:
            return float("nan"), float("nan")
        out = float(self.task) / self.steps, float(self.penalty) / self.steps
        self.task = self.penalty = None
        self.steps = 0
        return out


class L2SPLoss(torch.nn.Module):
    """``task_loss(features, labels) + strength * penalty(start)``; with ``strength`` 0 the task loss itself (no
    penalty computed). Records both parts of every training-mode call in :attr:`parts`; the recorded penalty is
    the weighted term ``strength * ||theta - theta_base||^2``, so ``loss = task_loss + l2sp_penalty``."""

    citation = CITATION

    def __init__(self, task_loss: torch.nn.Module, strength: float, start: StartPoint | None):
        super().__init__()
        if strength > 0 and start is None:
            raise ValueError("L2SPLoss: strength > 0 needs the start point (ftstudy.l2sp.start_point)")
        self.task = task_loss
        self.strength = float(strength)
        self.start = start
        self.parts = LossParts()

    @property
    def model(self):
        """The wrapped loss's model (sentence-transformers' trainer swaps in a wrapped model through it)."""
        return self.task.model

    def forward(self, features, labels):
        """The regularised loss (scalar); ``features``/``labels`` as the trainer passes them to any loss."""
        task = self.task(features, labels)
        if self.strength > 0:
            with torch.autocast(device_type=task.device.type, enabled=False):
                term = self.strength * penalty(self.start).to(task.device)
            total = task + term
        else:
            term, total = torch.zeros((), device=task.device), task
        if torch.is_grad_enabled():
            self.parts.add(task.detach().float(), term.detach())
        return total

    def get_config_dict(self) -> dict:
        """The wrapped loss's settings plus ``l2sp`` (the model card lists them)."""
        inner = self.task.get_config_dict() if hasattr(self.task, "get_config_dict") else {}
        return {**inner, "l2sp": self.strength}
