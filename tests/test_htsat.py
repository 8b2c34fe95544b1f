"""Multi-channel HTS-AT (merlib.models.htsat): sizes, shapes, modes and the Swin building blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from merlib.models.htsat import (
    HTSAT,
    AudioOutput,
    HTSATConfig,
    WindowAttention,
    count_parameters,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


def _wave(b: int, c: int, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(b, c, 64000, generator=torch.Generator().manual_seed(seed))


def test_parameter_count_of_the_paper_model():
    model = HTSAT(num_mics=3, mode="sum_pe", num_classes=8)
    assert count_parameters(model) == 27_571_432  # docs/design.md §5: STFT window and filterbank are buffers
    assert count_parameters(model) + 2 * 513 * 1024 + 513 * 64 == 28_654_888  # the reference's 28.655 M
    assert count_parameters(model, trainable_only=True) == 27_571_432 - 72  # the unused 8×8 head is frozen
    trunk = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("bn0", "tscam_conv", "head")))
    assert trunk == 27_534_360
    assert model.embedding_dim == 768
    assert not {n for n, _ in model.named_parameters()} & {"logmel.melW", "logmel.window"}


@pytest.mark.parametrize("mode", ["avg_mel", "sum_pe"])
@pytest.mark.parametrize("mics", [1, 3])
def test_forward_shapes(mode: str, mics: int):
    model = HTSAT(num_mics=mics, mode=mode, num_classes=8, config=HTSATConfig.quick()).eval()
    with torch.no_grad():
        out = model(_wave(2, mics))
    assert isinstance(out, AudioOutput)
    assert out.logits.shape == (2, 8) and out.embedding.shape == (2, model.embedding_dim) == (2, 192)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.embedding).all()
    assert model.images(_wave(2, mics)).shape == (2, 1 if mode == "avg_mel" else mics, 256, 256)


def test_arch_overrides_and_errors():
    model = HTSAT(2, "avg_mel", 5, embed_dim=16, depths=[1, 1, 1, 1], num_heads=(1, 1, 2, 2))
    assert model.embedding_dim == 128 and model.config.depths == (1, 1, 1, 1)
    assert model.tscam_conv.out_channels == 5
    with pytest.raises(TypeError, match="unknown architecture option"):
        HTSAT(embed_dimm=16)
    with pytest.raises(ValueError, match="mode"):
        HTSAT(mode="concat")
    with pytest.raises(ValueError, match=r"waveforms\[:, :1\]"):
        HTSAT(1, config=HTSATConfig.quick())(_wave(1, 3))


def test_sum_pe_with_one_mic_equals_avg_mel():
    torch.manual_seed(0)
    avg = HTSAT(1, "avg_mel", config=HTSATConfig.quick()).eval()
    summ = HTSAT(1, "sum_pe", config=HTSATConfig.quick()).eval()
    summ.load_state_dict(avg.state_dict())
    x = _wave(2, 1)
    with torch.no_grad():
        assert torch.allclose(avg(x).logits, summ(x).logits, atol=1e-6)


def test_avg_mel_of_identical_mics_equals_single_channel():
    torch.manual_seed(0)
    one = HTSAT(1, "avg_mel", config=HTSATConfig.quick()).eval()
    three = HTSAT(3, "avg_mel", config=HTSATConfig.quick()).eval()
    three.load_state_dict(one.state_dict())
    x = _wave(2, 1)
    with torch.no_grad():
        a, b = one(x), three(x.repeat(1, 3, 1))
    assert torch.allclose(a.logits, b.logits, atol=1e-5) and torch.allclose(a.embedding, b.embedding, atol=1e-5)


def test_sum_pe_sums_the_per_mic_patch_embeddings():
    torch.manual_seed(0)
    model = HTSAT(3, "sum_pe", config=HTSATConfig.quick()).eval()
    x = _wave(2, 3)
    with torch.no_grad():
        images = model.images(x)
        tokens = model.embed_patches(images)
        per_mic = sum(model.patch_embed(images[:, m : m + 1]) for m in range(3))
        assert torch.allclose(tokens, per_mic, atol=1e-5)
        assert torch.allclose(model(x).logits, model.forward_tokens(per_mic).logits, atol=1e-5)


def test_training_step_gives_gradients_to_all_trainable_parameters():
    torch.manual_seed(0)
    model = HTSAT(3, "sum_pe", config=HTSATConfig.quick()).train()
    out = model(_wave(4, 3))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []  # DDP can run without find_unused_parameters
    assert model.head.weight.grad is None and not model.head.weight.requires_grad
    # bn0 runs once per microphone in training, as in the reference: C running-stat updates per step
    assert int(model.bn0.num_batches_tracked) == 3


def test_specaugment_only_in_training():
    torch.manual_seed(0)
    model = HTSAT(3, "sum_pe", config=HTSATConfig.quick())
    x = _wave(2, 3)
    model.eval()
    assert not (model.images(x) == 0).any()
    model.train()
    model.spec_augment.generator = torch.Generator().manual_seed(0)
    img = model.images(x)
    zeros = img == 0
    assert zeros.any() and torch.equal(zeros[:, 0], zeros[:, 1]) and torch.equal(zeros[:, 0], zeros[:, 2])


def test_window_partition_roundtrip_and_order():
    x = torch.arange(16 * 16).float().view(1, 16, 16, 1)
    win = window_partition(x, 8)
    assert win.shape == (1, 4, 64, 1)
    assert win[0, 1, 0, 0] == 8 and win[0, 2, 0, 0] == 8 * 16  # windows row-major, tokens row-major
    assert torch.equal(window_reverse(win, 8, 16, 16), x)


def test_shift_mask_and_relative_index():
    mask = shifted_window_mask(64, 64, 8, 4)
    assert mask.shape == (64, 64, 64)
    assert torch.all(mask[0] == 0)  # an interior window sees one region only
    assert set(mask[-1].unique().tolist()) == {0.0, -100.0}  # the corner window mixes four regions
    assert int((mask[-1][0] == 0).sum()) == 16  # token (0,0) of the corner window shares its 4×4 region
    idx = relative_position_index(8)
    assert idx.shape == (64, 64) and idx.min() == 0 and idx.max() == 224
    assert torch.all(idx.diagonal() == 112)  # zero offset sits in the middle of the 15×15 table


def test_window_attention_equals_explicit_softmax():
    torch.manual_seed(0)
    attn = WindowAttention(dim=16, window_size=4, num_heads=2).eval()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
    x = torch.randn(3, 4, 16, 16)  # (B, nW, N, C)
    mask = shifted_window_mask(8, 8, 4, 2)  # (4, 16, 16)
    with torch.no_grad():
        out = attn(x, mask)
        b, nw, n, c = x.shape
        qkv = attn.qkv(x).view(b, nw, n, 3, 2, 8).permute(3, 0, 1, 4, 2, 5)  # (3, B, nW, h, N, hd)
        q, k, v = qkv[0] * 8**-0.5, qkv[1], qkv[2]
        logits = q @ k.transpose(-1, -2) + attn.relative_position_bias()[None, None] + mask[None, :, None]
        ref = (logits.softmax(-1) @ v).transpose(2, 3).reshape(b, nw, n, c)
        ref = attn.proj(ref)
    assert torch.allclose(out, ref, atol=1e-5)


def test_stage_four_has_no_shift():
    model = HTSAT(config=HTSATConfig.quick(depths=(2, 2, 2, 2)))
    shifts = [[blk.shift_size for blk in layer.blocks] for layer in model.layers]
    assert shifts == [[0, 4], [0, 4], [0, 4], [0, 0]]
    assert model.layers[3].blocks[1].attn_mask is None
    assert model.layers[0].blocks[1].attn_mask.shape == (64, 64, 64)


def test_token_semantic_map_averages_to_the_logits():
    torch.manual_seed(0)
    model = HTSAT(3, "avg_mel", config=HTSATConfig.quick()).eval()
    x = _wave(2, 3)
    with torch.no_grad():
        tsm = model.token_semantic_map(x)
        out = model(x)
    assert tsm.shape == (2, 8, 32)
    assert torch.allclose(tsm.mean(-1), out.logits, atol=1e-6)
    # the embedding is the plain mean of the 64 final tokens
    with torch.no_grad():
        final = model._final_map(model.embed_patches(model.images(x)))
    assert final.shape == (2, 192, 2, 32)
    assert torch.allclose(final.mean(dim=(2, 3)), out.embedding, atol=1e-6)


def test_config_presets():
    paper, quick = HTSATConfig.paper(), HTSATConfig.quick()
    assert (paper.embed_dim, paper.depths, paper.num_heads, paper.window_size) == (96, (2, 2, 6, 2), (4, 8, 16, 32), 8)
    front = (paper.fmin, paper.fmax, paper.n_mels, paper.hop_length, paper.drop_path_rate)
    assert front == (50.0, 14000.0, 64, 160, 0.1)
    assert quick.embed_dim * 2 ** (len(quick.depths) - 1) == 192
    assert HTSATConfig.quick(fmax=8000.0).fmax == 8000.0 and quick.to_dict()["depths"] == [1, 1, 1, 1]
    assert HTSAT(config=HTSATConfig.quick(fmax=8000.0)).logmel.melW[:, -1].sum() > 0  # no empty top filter


def test_bf16_autocast_forward_and_backward():
    """The benchmark's GPU path uses bf16 autocast; CPU autocast exercises the same dtype handling."""
    torch.manual_seed(0)
    model = HTSAT(3, "sum_pe", config=HTSATConfig.quick(depths=(2, 1, 1, 1))).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(_wave(2, 3))
        loss = F.cross_entropy(out.logits.float(), torch.tensor([0, 1]))
    loss.backward()
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()
    assert model.patch_embed.proj.weight.grad is not None


def test_using_mics_lets_a_three_mic_model_read_fewer():
    torch.manual_seed(0)
    three = HTSAT(num_mics=3, mode="avg_mel", config=HTSATConfig.quick()).eval()
    one = HTSAT(num_mics=1, mode="avg_mel", config=HTSATConfig.quick()).eval()
    one.load_state_dict(three.state_dict())  # nothing in the weights depends on the number of microphones
    x = _wave(2, 3)
    with torch.no_grad():
        with three.using_mics(1):
            assert three.num_mics == 1
            a = three(x[:, :1]).logits
        b = one(x[:, :1]).logits
        assert torch.allclose(a, b, atol=1e-6)
        assert three.num_mics == 3
        with pytest.raises(ValueError, match="expects waveforms"):
            three(x[:, :2])
        with pytest.raises(RuntimeError):
            with three.using_mics(2):
                raise RuntimeError("an error inside the block")
        assert three.num_mics == 3  # restored even after an error
        with pytest.raises(ValueError, match=">= 1"):
            with three.using_mics(0):
                pass


# ------------------------------------------------ the CPU-speed rewrites compute what the plain forms compute


def test_patch_embedding_as_a_matrix_product_equals_the_convolution():
    """PatchEmbed applies its Conv2d(kernel = stride = 4) weight to the flattened patches: same tokens and the
    same weight gradient as the convolution followed by flatten + transpose (the reference's form)."""
    from merlib.models.htsat import PatchEmbed

    torch.manual_seed(0)
    pe = PatchEmbed(4, 1, 96)
    x = torch.randn(3, 1, 256, 256)
    tokens = pe(x)
    plain = pe.norm(pe.proj(x).flatten(2).transpose(1, 2))
    assert tokens.shape == (3, 64 * 64, 96)
    torch.testing.assert_close(tokens, plain, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(tokens)
    (grad_fast,) = torch.autograd.grad(tokens, pe.proj.weight, g)
    (grad_plain,) = torch.autograd.grad(plain, pe.proj.weight, g)
    # a sum over 12 288 tokens in another order: compared as a whole, to float32 rounding
    assert (grad_fast - grad_plain).norm() / grad_plain.norm() < 1e-5
    with pytest.raises(ValueError, match="multiple of the patch size"):
        pe(torch.randn(1, 1, 30, 32))


def test_patch_merging_keeps_the_reference_token_order():
    """One permute lays the 2×2 groups out as the reference's cat of four strided slices: (0,0), (1,0), (0,1),
    (1,1) as (row, column) offsets — the order its ``reduction`` weights expect."""
    from merlib.models.htsat import PatchMerging

    torch.manual_seed(0)
    pm = PatchMerging((8, 8), 6)
    x = torch.randn(2, 64, 6)
    m = x.view(2, 8, 8, 6)
    plain = torch.cat([m[:, 0::2, 0::2], m[:, 1::2, 0::2], m[:, 0::2, 1::2], m[:, 1::2, 1::2]], dim=-1)
    torch.testing.assert_close(pm(x), pm.reduction(pm.norm(plain.reshape(2, -1, 24))), rtol=0, atol=0)


def test_training_attention_equals_scaled_dot_product_attention():
    """With a learned bias (training), the attention is written out; it equals PyTorch's
    scaled_dot_product_attention, and so do the gradients of the bias table and the input."""
    torch.manual_seed(0)
    attn = WindowAttention(dim=48, window_size=4, num_heads=3)
    x = torch.randn(2, 4, 16, 48, requires_grad=True)
    mask = shifted_window_mask(8, 8, 4, 2)
    out = attn(x, mask)  # grad enabled, the bias table requires grad: the written-out path
    with torch.no_grad():
        fused = attn(x, mask)  # scaled_dot_product_attention
    torch.testing.assert_close(out, fused, rtol=1e-5, atol=1e-5)

    def reference_grads() -> tuple[torch.Tensor, torch.Tensor]:
        b, nw, n, c = x.shape
        qkv = attn.qkv(x).view(b, nw, n, 3, 3, c // 3).permute(3, 0, 1, 4, 2, 5)
        q, k, v = (t.reshape(b, nw * 3, n, c // 3) for t in qkv.unbind(0))
        am = (attn.relative_position_bias().unsqueeze(0) + mask.unsqueeze(1)).reshape(1, nw * 3, n, n)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=am)
        y = attn.proj(y.view(b, nw, 3, n, c // 3).transpose(2, 3).reshape(b, nw, n, c))
        return torch.autograd.grad(y.sum(), (attn.relative_position_bias_table, x))

    mine = torch.autograd.grad(out.sum(), (attn.relative_position_bias_table, x))
    for a, b in zip(mine, reference_grads()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
