"""Sliding-window self-attention implementations behind one signature.

Each is a `LongformerSelfAttention` with the same weights and projections; only the attention core
differs. `hf` is transformers' own layer (the reference); `blocked` computes the same function with
scaled_dot_product_attention over window-sized blocks; `flex` uses flex_attention with a
sliding-window block mask (CUDA: it has no backward on CPU); `dense` attends to the whole sequence
(a different function, there to show where the window starts to pay off). Global attention, which
FlagPerf never uses, falls back to HF's code in every implementation.
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LongformerConfig
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

IMPLEMENTATIONS = ("hf", "blocked", "flex", "dense")
EXACT = ("hf", "blocked", "flex")  # the implementations of Longformer's own function


class PerTensor:
    """`compute(tensor, *key)` done once per tensor object and key, while the tensor lives and is
    not modified: the model hands every layer of one forward the same padding mask, so what is
    derived from it (whether any token is padding: a host sync; flex's block mask: kernels) is
    worked out once a forward, not once a layer."""

    def __init__(self, compute: Callable[..., object]) -> None:
        self.compute = compute
        self.ref: weakref.ref | None = None
        self.stamp: tuple = ()
        self.value: object = None

    def __call__(self, tensor: torch.Tensor, *key: object) -> object:
        stamp = (tensor._version, *key)
        if self.ref is None or self.ref() is not tensor or self.stamp != stamp:
            self.value = self.compute(tensor, *key)
            self.ref, self.stamp = weakref.ref(tensor), stamp
        return self.value


any_masked = PerTensor(lambda masked: bool(masked.any()))


class SDPASelfAttention(LongformerSelfAttention):
    """HF's projections and output layout; the attention core is `attend`, in (B, H, L, D)."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        is_index_masked: torch.Tensor | None = None,
        is_index_global_attn: torch.Tensor | None = None,
        is_global_attn: bool | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        if is_global_attn or output_attentions:
            return super().forward(
                hidden_states,
                attention_mask,
                is_index_masked,
                is_index_global_attn,
                is_global_attn,
                output_attentions,
            )
        batch, seq_len, embed = hidden_states.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, seq_len, self.num_heads, self.head_dim).transpose(1, 2)

        # Scale q before the product, as HF does, so results agree to the last bits.
        query = heads(self.query(hidden_states) / math.sqrt(self.head_dim))
        key, value = heads(self.key(hidden_states)), heads(self.value(hidden_states))
        masked = is_index_masked if is_index_masked is not None and any_masked(is_index_masked) else None
        dropout = self.dropout if self.training else 0.0
        out = self.attend(query, key, value, masked, dropout)
        if masked is not None:  # HF gives padding queries zero attention output
            out = out.masked_fill(masked[:, None, :, None], 0.0)
        return (out.transpose(1, 2).reshape(batch, seq_len, embed),)

    def attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        masked: torch.Tensor | None,
        dropout: float,
    ) -> torch.Tensor:
        raise NotImplementedError


class DenseSelfAttention(SDPASelfAttention):
    """Every token attends to every non-padding token: O(L^2), no window."""

    def attend(self, query, key, value, masked, dropout):
        mask = None
        if masked is not None:
            seq_len = query.shape[2]
            allowed = ~masked[:, None, None, :]
            # A padding query may see itself, so no row is empty (its output is zeroed anyway).
            mask = allowed | torch.eye(seq_len, dtype=torch.bool, device=query.device)
        return F.scaled_dot_product_attention(query, key, value, mask, dropout, scale=1.0)


def offsets(w: int, device: torch.device) -> torch.Tensor:
    """(w, 3w): key position minus query position, plus w, for a query block and its 3w keys."""
    return torch.arange(3 * w, device=device)[None, :] - torch.arange(w, device=device)[:, None]


@cache
def window_mask(n_blocks: int, w: int, device: torch.device) -> torch.Tensor:
    """(nb, w, 3w): the band |i - j| <= w, cut off at the sequence's ends."""
    band = (offsets(w, device) >= 0) & (offsets(w, device) <= 2 * w)
    exists = F.pad(torch.ones(1, n_blocks * w, dtype=torch.bool, device=device), (w, w))
    return band & exists.unfold(1, 3 * w, w)[0][:, None, :]


class BlockedSelfAttention(SDPASelfAttention):
    """Longformer's band computed exactly with SDPA over blocks of queries.

    Queries in blocks of w (the one-sided window, window/2) attend to the 3w keys around their
    block under a band mask, so each query sees exactly keys i-w .. i+w, as HF's layer does. The
    neighbourhoods are an overlapping strided view (`unfold`) of the padded keys, not a copy. The
    dense tiles compute 3w scores per query where 2w+1 are used, but run as one fused kernel
    instead of HF's chunked copies. (Blocks of w/2 or 2w measured slower on a 2-core CPU.)
    """

    def attend(self, query, key, value, masked, dropout):
        batch, n_heads, seq_len, head_dim = query.shape
        w = self.one_sided_attn_window_size
        n_blocks = seq_len // w

        def neighbourhoods(x: torch.Tensor) -> torch.Tensor:  # (B, H, L, D) -> (B*H, nb, 3w, D) view
            padded = F.pad(x.reshape(batch * n_heads, seq_len, head_dim), (0, 0, w, w))
            return padded.unfold(1, 3 * w, w).transpose(2, 3)

        q = query.reshape(batch * n_heads, n_blocks, w, head_dim)
        mask = window_mask(n_blocks, w, query.device)  # (nb, w, 3w)
        if masked is None:
            mask = mask[None]  # shared by every sequence and head
        else:
            keep = F.pad(~masked, (w, w), value=False).unfold(1, 3 * w, w)  # (B, nb, 3w)
            mask = mask & keep[:, :, None, :]
            # A padding query may see itself, so no row is empty (its output is zeroed anyway).
            itself = offsets(w, query.device) == w
            mask = mask | (itself & masked.view(batch, n_blocks, w, 1))
            mask = mask[:, None].expand(batch, n_heads, n_blocks, w, 3 * w)
            mask = mask.reshape(batch * n_heads, n_blocks, w, 3 * w)
        out = F.scaled_dot_product_attention(
            q, neighbourhoods(key), neighbourhoods(value), mask, dropout, scale=1.0
        )
        return out.view(batch, n_heads, seq_len, head_dim)


def flex_block_mask(masked: torch.Tensor | None, w: int, seq_len: int, device: torch.device):
    """The sliding-window block mask (|i - j| <= w; with padding, padding keys masked, a padding
    query seeing itself). `create_block_mask` runs eagerly and costs more than the attention at
    base size on a GPU, so it is built once per shape (no padding) or per padding mask."""
    if masked is None:
        return band_block_mask(w, seq_len, device)
    return padded_block_mask(masked, w, seq_len)


def window_mod(w: int, keep: torch.Tensor | None) -> Callable:
    def window(b, h, q_idx, kv_idx):
        inside = (q_idx - kv_idx <= w) & (kv_idx - q_idx <= w)
        if keep is None:
            return inside
        return inside & (keep[b, kv_idx] | (q_idx == kv_idx))

    return window


@cache
def band_block_mask(w: int, seq_len: int, device: torch.device):
    from torch.nn.attention.flex_attention import create_block_mask

    return create_block_mask(window_mod(w, None), None, None, seq_len, seq_len, device=device)


def _padded_block_mask(masked: torch.Tensor, w: int, seq_len: int):
    from torch.nn.attention.flex_attention import create_block_mask

    window = window_mod(w, ~masked)
    return create_block_mask(window, masked.shape[0], None, seq_len, seq_len, device=masked.device)


padded_block_mask = PerTensor(_padded_block_mask)


class FlexSelfAttention(SDPASelfAttention):
    """flex_attention with a sliding-window block mask; compiled, so CUDA is where it pays."""

    def attend(self, query, key, value, masked, dropout):
        if dropout:
            raise NotImplementedError("flex_attention has no attention dropout; use --dtype with eval")
        seq_len = query.shape[2]
        block_mask = flex_block_mask(masked, self.one_sided_attn_window_size, seq_len, query.device)
        with flex_graph_limit():
            return compiled_flex_attention(FLEX_BACKEND)(query, key, value, block_mask=block_mask, scale=1.0)


# One compiled flex_attention serves every shape, window, dtype and grad mode of a process, a graph
# each (dynamic=False). Past dynamo's default of 8 graphs a function it would run flex unfused,
# materializing the whole L x L scores with only a warning: GPU_CASES' two passes alone are 14
# graphs in one session-long worker. So the limit is raised for flex's calls, and reaching it fails.
FLEX_GRAPHS = 64
FLEX_BACKEND = "inductor"  # tests count graphs with dynamo's "eager" backend, without inductor's codegen


def flex_graph_limit():
    """Up to FLEX_GRAPHS graphs of flex_attention; the next raises dynamo's FailOnRecompileLimitHit
    instead of falling back. The same config names on torch 2.11 and 2.13."""
    import torch._dynamo

    return torch._dynamo.config.patch(recompile_limit=FLEX_GRAPHS, fail_on_recompile_limit_hit=True)


@cache
def compiled_flex_attention(backend: str):
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False, backend=backend)


CLASSES: dict[str, type[LongformerSelfAttention]] = {
    "hf": LongformerSelfAttention,
    "blocked": BlockedSelfAttention,
    "flex": FlexSelfAttention,
    "dense": DenseSelfAttention,
}


def use_attention(model: nn.Module, implementation: str) -> int:
    """Swap every self-attention layer of `model` to `implementation` in place (same weights).

    Returns the number of layers swapped.
    """
    if implementation not in CLASSES:
        raise ValueError(f"unknown attention {implementation!r}; expected one of {', '.join(CLASSES)}")
    swapped = 0
    for module in model.modules():
        if isinstance(module, LongformerSelfAttention):
            module.__class__ = CLASSES[implementation]
            swapped += 1
    return swapped


def make_layer(
    config: LongformerConfig, window: int, implementation: str, device: torch.device, seed: int
) -> LongformerSelfAttention:
    """One self-attention layer with `config`'s dimensions, `window`, seeded weights, no dropout.

    Attention dropout is off so every implementation does the same work (flex has none).
    """
    layer_config = copy.deepcopy(config)
    layer_config.attention_window = [window]
    layer_config.attention_probs_dropout_prob = 0.0
    torch.manual_seed(seed)
    layer = LongformerSelfAttention(layer_config, layer_id=0).to(device)
    use_attention(layer, implementation)
    return layer


def layer_inputs(
    batch: int, seq_len: int, hidden: int, device: torch.device, seed: int, padding: int = 0
) -> tuple[torch.Tensor, dict[str, torch.Tensor | bool]]:
    """Random non-zero hidden states and the masks LongformerModel passes its layers.

    The last `padding` tokens of the first sequence are padding (FlagPerf's data has none).
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    hidden_states = torch.randn(batch, seq_len, hidden, device=device, generator=generator)
    masked = torch.zeros(batch, seq_len, dtype=torch.bool, device=device)
    if padding:
        masked[0, seq_len - padding :] = True
    attention_mask = torch.zeros(batch, seq_len, device=device).masked_fill(
        masked, torch.finfo(torch.float32).min
    )
    return hidden_states, {
        "attention_mask": attention_mask,
        "is_index_masked": masked,
        "is_index_global_attn": torch.zeros_like(masked),
        "is_global_attn": False,
    }
