"""FlagPerf's training step: AdamW with selective weight decay, a linear schedule, one update."""

from __future__ import annotations

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from bench.device import Precision

LEARNING_RATE = 5e-5
WEIGHT_DECAY = 0.01


def decays(parameter_name: str) -> bool:
    """FlagPerf exempts biases and LayerNorm weights from weight decay."""
    return not ("bias" in parameter_name or "LayerNorm.weight" in parameter_name)


def make_optimizer(
    model: nn.Module, lr: float = LEARNING_RATE, weight_decay: float = WEIGHT_DECAY
) -> torch.optim.AdamW:
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if decays(n)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if not decays(n)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear decay to zero over the whole run, no warmup, stepped every batch (as FlagPerf)."""
    return get_linear_schedule_with_warmup(optimizer, 0, total_steps)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    precision: Precision,
    device: torch.device,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    scaler: torch.amp.GradScaler | None = None,
) -> torch.Tensor:
    """Forward, backward, optimizer and scheduler: the work FlagPerf's p_core times.

    Returns the loss as a device tensor; reading it (`.item()`) would stall the device every step.
    """
    with precision.active(device):
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    scheduler.step()
    return loss.detach()
