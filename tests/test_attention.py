"""Every implementation of the sliding window computes HF's function; memory grows as it should."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LongformerConfig, LongformerForMaskedLM

from bench.harness.attention import CLASSES, layer_inputs, make_layer, use_attention
from bench.harness.metrics import attention_layer_flops
from bench.measure.counts import counted_flops, saved_bytes_for_backward

FP32_TOLERANCE = 1e-5  # relative error (norm of the difference over norm of the reference)
BF16_TOLERANCE = 2e-2  # bf16 keeps 8 bits of mantissa; both sides round differently
SHAPES = [  # hidden, heads, window, seq_len, batch, padding of the first sequence
    (64, 4, 16, 64, 2, 0),
    (64, 4, 16, 128, 2, 20),
    (128, 4, 32, 256, 1, 100),
    (128, 8, 64, 256, 2, 0),
    (96, 3, 32, 192, 2, 180),
]


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


def config(hidden: int, heads: int) -> LongformerConfig:
    return LongformerConfig(hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=1)


def outputs_and_input_grads(implementation, shape, device, dtype="fp32", backward=True):
    hidden, heads, window, seq_len, batch, padding = shape
    layer = make_layer(config(hidden, heads), window, implementation, device, seed=0)
    x, kwargs = layer_inputs(batch, seq_len, hidden, device, seed=1, padding=padding)
    x.requires_grad_(backward)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=dtype == "bf16")
    with autocast, torch.set_grad_enabled(backward):
        out = layer(x, **kwargs)[0]
    if not backward:
        return out, None
    upstream = torch.randn(out.shape, device=device, generator=torch.Generator(device=device).manual_seed(2))
    (grad,) = torch.autograd.grad(out, x, upstream.to(out.dtype))
    return out, grad


@pytest.mark.parametrize("shape", SHAPES, ids=[f"h{s[0]}-w{s[2]}-L{s[3]}-b{s[4]}-pad{s[5]}" for s in SHAPES])
def test_blocked_matches_hf_in_fp32(shape):
    device = torch.device("cpu")
    want_out, want_grad = outputs_and_input_grads("hf", shape, device)
    got_out, got_grad = outputs_and_input_grads("blocked", shape, device)
    assert relative_error(got_out, want_out) < FP32_TOLERANCE
    assert relative_error(got_grad, want_grad) < FP32_TOLERANCE


@pytest.mark.parametrize("shape", SHAPES[:3], ids=["small", "padded", "long-pad"])
def test_blocked_matches_hf_in_bf16(shape):
    device = torch.device("cpu")
    want_out, want_grad = outputs_and_input_grads("hf", shape, device)  # fp32 reference
    got_out, got_grad = outputs_and_input_grads("blocked", shape, device, dtype="bf16")
    assert got_out.dtype is torch.bfloat16
    assert relative_error(got_out, want_out) < BF16_TOLERANCE
    assert relative_error(got_grad, want_grad) < BF16_TOLERANCE


@pytest.mark.slow
def test_flex_forward_matches_hf_on_cpu():
    """flex_attention compiles on the CPU (tens of seconds, once) but has no backward there."""
    device = torch.device("cpu")
    for shape in (SHAPES[1], SHAPES[4]):
        want, _ = outputs_and_input_grads("hf", shape, device, backward=False)
        got, _ = outputs_and_input_grads("flex", shape, device, backward=False)
        assert relative_error(got, want) < FP32_TOLERANCE


def test_flex_stays_compiled_past_dynamos_default_limit_and_fails_loudly_at_its_own(monkeypatch):
    """More shapes than dynamo's default of 8 graphs in one process (a worker's life): a graph each,
    none run unfused (dynamo's fallback past its limit, with only a warning); past FLEX_GRAPHS the
    call raises. Counted with dynamo's eager backend: inductor would compile each for seconds."""
    import torch._dynamo
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list
    from torch.nn.attention.flex_attention import flex_attention

    from bench.harness import attention

    monkeypatch.setattr(attention, "FLEX_BACKEND", "eager")
    device, shapes = torch.device("cpu"), [(64, 4, 16, 64 * k, 1, 0) for k in range(1, 12)]
    torch._dynamo.reset()
    try:
        for shape in shapes[:10]:
            want, _ = outputs_and_input_grads("hf", shape, device, backward=False)
            got, _ = outputs_and_input_grads("flex", shape, device, backward=False)
            assert relative_error(got, want) < FP32_TOLERANCE
        assert len(_debug_get_cache_entry_list(flex_attention.__code__)) == 10
        monkeypatch.setattr(attention, "FLEX_GRAPHS", 10)
        with pytest.raises(torch._dynamo.exc.FailOnRecompileLimitHit):
            outputs_and_input_grads("flex", shapes[10], device, backward=False)
    finally:
        torch._dynamo.reset()


@pytest.mark.gpu
@pytest.mark.parametrize("implementation", ["blocked", "flex"])
def test_implementations_match_hf_on_cuda(implementation):
    device = torch.device("cuda")
    for shape in SHAPES if implementation != "flex" else SHAPES[1:3]:  # flex compiles every shape
        want_out, want_grad = outputs_and_input_grads("hf", shape, device)
        got_out, got_grad = outputs_and_input_grads(implementation, shape, device)
        assert relative_error(got_out, want_out) < FP32_TOLERANCE
        assert relative_error(got_grad, want_grad) < FP32_TOLERANCE
        got_out, got_grad = outputs_and_input_grads(implementation, shape, device, dtype="bf16")
        assert relative_error(got_out, want_out) < BF16_TOLERANCE
        assert relative_error(got_grad, want_grad) < BF16_TOLERANCE


def test_global_attention_falls_back_to_hf():
    device = torch.device("cpu")
    layers = {impl: make_layer(config(64, 4), 16, impl, device, seed=0) for impl in ("hf", "blocked")}
    x, kwargs = layer_inputs(2, 64, 64, device, seed=1)
    kwargs["is_index_global_attn"][:, 0] = True
    kwargs["attention_mask"][:, 0] = 10000.0
    kwargs["is_global_attn"] = True
    outs = {impl: layer(x, **kwargs)[0] for impl, layer in layers.items()}
    assert torch.equal(outs["blocked"], outs["hf"])


def test_swapping_the_whole_model_keeps_weights_and_outputs(run_spec, initial_model, train_set):
    reference = copy.deepcopy(initial_model).eval()
    swapped = copy.deepcopy(initial_model).eval()
    assert use_attention(swapped, "blocked") == run_spec.config.num_hidden_layers
    for a, b in zip(reference.state_dict().values(), swapped.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    ids, mask = train_set.input_ids[:2], train_set.attention_mask[:2]
    want = reference(input_ids=ids, attention_mask=mask).logits
    got = swapped(input_ids=ids, attention_mask=mask).logits
    assert relative_error(got, want) < FP32_TOLERANCE


def test_unknown_implementation_is_refused():
    with pytest.raises(ValueError, match="unknown attention 'sparse'"):
        use_attention(LongformerForMaskedLM(config(64, 4)), "sparse")


def saved_bytes(implementation: str, seq_len: int, math_backend: bool = False) -> int:
    device = torch.device("cpu")
    layer = make_layer(config(64, 4), 32, implementation, device, seed=0)
    x, kwargs = layer_inputs(1, seq_len, 64, device, seed=1)
    x.requires_grad_(True)
    if not math_backend:
        return saved_bytes_for_backward(lambda: layer(x, **kwargs))
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return saved_bytes_for_backward(lambda: layer(x, **kwargs))


def growth(sizes: list[int]) -> float:
    """How the increments grow when the length doubles: 2 for linear, 4 for quadratic."""
    return (sizes[2] - sizes[1]) / (sizes[1] - sizes[0])


LENGTHS = (512, 1024, 2048)


@pytest.mark.parametrize("implementation", ["hf", "blocked"])
def test_banded_saved_bytes_grow_linearly(implementation):
    ratio = growth([saved_bytes(implementation, n) for n in LENGTHS])
    assert ratio == pytest.approx(2.0, abs=0.1)


def test_dense_saved_bytes_grow_quadratically_when_materialized():
    """Dense attention that keeps its L x L probabilities (SDPA's math backend) is quadratic.

    (Flash-style dense SDPA recomputes them in backward and saves O(L): the window's memory edge is
    over materialized attention.)
    """
    ratio = growth([saved_bytes("dense", n, math_backend=True) for n in LENGTHS])
    assert ratio == pytest.approx(4.0, abs=0.2)


def test_every_implementation_is_registered():
    assert set(CLASSES) == {"hf", "blocked", "flex", "dense"}


def test_useful_flops_of_longformer_base_layer():
    """hidden 768, window 512, seq 4096, batch 1, forward + backward: about 6.3e10 FLOPs."""
    assert attention_layer_flops(1, 4096, 768, 512, backward=True) == 62_851_645_440


@pytest.mark.parametrize("implementation", ["hf", "blocked", "dense"])
def test_counted_flops_cover_the_useful_work(implementation):
    device = torch.device("cpu")
    layer = make_layer(config(128, 4), 32, implementation, device, seed=0)
    x, kwargs = layer_inputs(2, 512, 128, device, seed=1)
    x.requires_grad_(True)
    counted = counted_flops(lambda: layer(x, **kwargs)[0].sum().backward())
    window = None if implementation == "dense" else 32
    useful = attention_layer_flops(2, 512, 128, window, backward=True)
    assert useful <= counted < 1.5 * useful


def test_whether_anything_is_padding_is_asked_once_a_forward_not_once_a_layer(
    run_spec, initial_model, monkeypatch
):
    """`is_index_masked.any()` is a host sync; HF's layer does not pay it in every layer, ours must not."""
    from bench.harness import attention

    calls: list[int] = []
    compute = attention.any_masked.compute
    monkeypatch.setattr(attention.any_masked, "compute", lambda masked: calls.append(1) or compute(masked))
    model = copy.deepcopy(initial_model).eval()
    use_attention(model, "blocked")
    ids = torch.ones(2, 64, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[0, 40:] = 0  # padding, so the masked path runs too
    for _ in range(2):
        model(input_ids=ids, attention_mask=mask)
    assert run_spec.config.num_hidden_layers > 1 and len(calls) == 2  # one per forward


def test_flex_block_masks_are_built_once_per_shape_and_padding_mask(monkeypatch):
    import torch.nn.attention.flex_attention as flex

    from bench.harness.attention import flex_block_mask

    built: list[tuple] = []
    monkeypatch.setattr(flex, "create_block_mask", lambda *args, **kwargs: built.append(args) or object())
    device = torch.device("cpu")
    band = flex_block_mask(None, 7, 70, device)
    assert flex_block_mask(None, 7, 70, device) is band and len(built) == 1
    masked = torch.zeros(2, 70, dtype=torch.bool)
    padded = flex_block_mask(masked, 7, 70, device)
    assert flex_block_mask(masked, 7, 70, device) is padded and len(built) == 2
    masked[0, 60:] = True  # the same tensor changed in place: built again
    assert flex_block_mask(masked, 7, 70, device) is not padded and len(built) == 3
