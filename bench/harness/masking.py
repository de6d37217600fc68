"""MLM masking on the device, with the semantics of HF's DataCollatorForLanguageModeling.

FlagPerf masks on the host in DataLoader workers, every epoch anew. Here the same distribution is
drawn on the device from a seeded generator, so masking neither stalls the step nor varies by run:
each non-special token is selected with probability 0.15; of the selected, 80% become <mask>, 10%
a uniformly random id in [0, vocab_size), 10% stay; labels hold the original id where selected and
-100 elsewhere.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


class MLMMasker:
    """Draws masks for batches of token ids; one generator, so a seed fixes the whole sequence."""

    def __init__(
        self,
        mask_token_id: int,
        vocab_size: int,
        device: torch.device,
        seed: int,
        mlm_probability: float = 0.15,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
    ) -> None:
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability {mlm_probability} must lie in (0, 1)")
        if mask_replace_prob < 0 or random_replace_prob < 0:
            raise ValueError("replacement probabilities must not be negative")
        if mask_replace_prob + random_replace_prob > 1.0:
            raise ValueError("mask_replace_prob + random_replace_prob must not exceed 1")
        self.mask_token_id = mask_token_id
        self.vocab_size = vocab_size
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def __call__(
        self, input_ids: torch.Tensor, special_tokens_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (masked input ids, labels); the inputs are left untouched."""
        shape, device, gen = input_ids.shape, input_ids.device, self.generator
        selected = torch.rand(shape, device=device, generator=gen) < self.mlm_probability
        selected &= ~special_tokens_mask.bool()
        labels = torch.where(selected, input_ids, IGNORE_INDEX)
        # One uniform draw splits the selected tokens into mask / random / unchanged.
        split = torch.rand(shape, device=device, generator=gen)
        to_mask = selected & (split < self.mask_replace_prob)
        to_random = (
            selected
            & (split >= self.mask_replace_prob)
            & (split < self.mask_replace_prob + self.random_replace_prob)
        )
        random_ids = torch.randint(
            self.vocab_size, shape, device=device, generator=gen, dtype=input_ids.dtype
        )
        masked = torch.where(to_mask, self.mask_token_id, input_ids)
        masked = torch.where(to_random, random_ids, masked)
        return masked, labels
