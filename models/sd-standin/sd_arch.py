"""Stable Diffusion 1.x architectures with random weights: the text tower, the UNet and the VAE.

Written from the published descriptions (the latent diffusion paper, Rombach et al. 2022; the
CLIP paper, Radford et al. 2021; the fields of the models' `config.json` files), to stand in for
a real Stable Diffusion export where no weights can be downloaded. Every width, depth and head
count comes from a config dictionary with the same field names as the real `config.json`
files, so `SD15` below builds the full-size networks (UNet 859.5M parameters, text tower 123.1M,
VAE decoder 49.5M) and `TINY` the reduced-width twin with the same op graph.

Nothing here loads weights: parameters keep PyTorch's default initialisation, with the output
layers scaled down so that the random networks stay finite in float16 too.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# Configs, in the field names of the real config.json files

SD15 = {
    "unet": {
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "block_out_channels": [320, 640, 1280, 1280],
        "layers_per_block": 2,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                             "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                           "CrossAttnUpBlock2D"],
        "attention_head_dim": 8,  # SD 1.x: the number of heads, despite the name
        "cross_attention_dim": 768,
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "act_fn": "silu",
    },
    "text_encoder": {
        "vocab_size": 49408,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
    },
    "vae": {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "sample_size": 512,
        "scaling_factor": 0.18215,
        "act_fn": "silu",
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    },
}

# The reduced-width twin: the same blocks, attention layouts and op graph, a few MB of weights.
TINY = {
    "unet": {**SD15["unet"], "sample_size": 8, "block_out_channels": [16, 16, 32, 32],
             "attention_head_dim": 2, "cross_attention_dim": 32, "norm_num_groups": 8},
    "text_encoder": {**SD15["text_encoder"], "vocab_size": 1024, "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "bos_token_id": 1022, "eos_token_id": 1023},
    "vae": {**SD15["vae"], "block_out_channels": [16, 16, 32, 32], "norm_num_groups": 8,
            "sample_size": 64},
}


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------
# Shared pieces


class Attention(nn.Module):
    """Multi-head attention over token sequences: softmax(q kᵀ / √d) v, then an output projection."""

    def __init__(self, dim, heads, context_dim=None, qkv_bias=False):
        super().__init__()
        context_dim = context_dim or dim
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(context_dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(context_dim, dim, bias=qkv_bias)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        b, n, c = x.shape
        h = self.heads
        d = c // h

        def split(t):
            return t.reshape(b, -1, h, d).transpose(1, 2)  # [b, heads, tokens, d]

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
        if mask is not None:
            scores = scores + mask
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, c))


class ResnetBlock(nn.Module):
    """GroupNorm–SiLU–conv twice, with the time embedding added in between (UNet only)."""

    def __init__(self, cin, cout, groups, eps, temb_dim=None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, cout) if temb_dim else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


class Upsample(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 convolution."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# ------------------------------------------------------------------------------------------------
# UNet


class TransformerBlock(nn.Module):
    """Self-attention, cross-attention to the text states, GEGLU feed-forward; pre-LayerNorm."""

    def __init__(self, dim, heads, context_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff_proj = nn.Linear(dim, 2 * 4 * dim)  # GEGLU: value and gate
        self.ff_out = nn.Linear(4 * dim, dim)

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        value, gate = self.ff_proj(self.norm3(x)).chunk(2, dim=-1)
        return x + self.ff_out(value * F.gelu(gate))


class SpatialTransformer(nn.Module):
    """GroupNorm, 1×1 conv in, one transformer block over the H·W tokens, 1×1 conv out, residual."""

    def __init__(self, channels, heads, context_dim, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.block = TransformerBlock(channels, heads, context_dim)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x, context):
        b, c, hgt, wid = x.shape
        h = self.proj_in(self.norm(x))
        h = h.reshape(b, c, hgt * wid).transpose(1, 2)
        h = self.block(h, context)
        h = h.transpose(1, 2).reshape(b, c, hgt, wid)
        return x + self.proj_out(h)


def timestep_embedding(t, dim, flip_sin_to_cos, shift):
    """The sinusoidal embedding of the DDPM step index."""
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - shift)
    angles = t[:, None].to(torch.float32) * torch.exp(exponent)[None, :]
    sin, cos = torch.sin(angles), torch.cos(angles)
    return torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)


class UNet(nn.Module):
    """The Stable Diffusion 1.x UNet: four levels, cross-attention in the first three."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch = cfg["block_out_channels"]
        groups, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        heads, ctx = cfg["attention_head_dim"], cfg["cross_attention_dim"]
        temb = 4 * ch[0]
        layers = cfg["layers_per_block"]
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.time_linear_1 = nn.Linear(ch[0], temb)
        self.time_linear_2 = nn.Linear(temb, temb)

        self.down = nn.ModuleList()
        skips = [ch[0]]
        cin = ch[0]
        for level, kind in enumerate(cfg["down_block_types"]):
            cout = ch[level]
            block = nn.Module()
            block.resnets = nn.ModuleList(
                ResnetBlock(cin if i == 0 else cout, cout, groups, eps, temb) for i in range(layers))
            block.attentions = nn.ModuleList(
                SpatialTransformer(cout, heads, ctx, groups) for _ in range(layers)
            ) if kind.startswith("CrossAttn") else None
            skips += [cout] * layers
            last = level == len(ch) - 1
            block.downsample = None if last else nn.Conv2d(cout, cout, 3, stride=2, padding=1)
            if not last:
                skips.append(cout)
            self.down.append(block)
            cin = cout

        self.mid_res1 = ResnetBlock(ch[-1], ch[-1], groups, eps, temb)
        self.mid_attn = SpatialTransformer(ch[-1], heads, ctx, groups)
        self.mid_res2 = ResnetBlock(ch[-1], ch[-1], groups, eps, temb)

        self.up = nn.ModuleList()
        rev = list(reversed(ch))
        prev = ch[-1]
        for level, kind in enumerate(cfg["up_block_types"]):
            cout = rev[level]
            block = nn.Module()
            resnets = []
            for _ in range(layers + 1):
                resnets.append(ResnetBlock(prev + skips.pop(), cout, groups, eps, temb))
                prev = cout
            block.resnets = nn.ModuleList(resnets)
            block.attentions = nn.ModuleList(
                SpatialTransformer(cout, heads, ctx, groups) for _ in range(layers + 1)
            ) if kind.startswith("CrossAttn") else None
            block.upsample = Upsample(cout) if level < len(ch) - 1 else None
            self.up.append(block)

        self.conv_norm_out = nn.GroupNorm(groups, ch[0], eps=eps)
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)
        with torch.no_grad():
            self.conv_out.weight.mul_(0.1)

    def forward(self, sample, timestep, encoder_hidden_states):
        cfg = self.cfg
        # One time for the batch (a scalar) or one per sample, as exports feed it.
        t = timestep.reshape(-1).expand(sample.shape[0])
        emb = timestep_embedding(t, cfg["block_out_channels"][0], cfg["flip_sin_to_cos"],
                                 cfg["freq_shift"]).to(sample.dtype)
        emb = self.time_linear_2(F.silu(self.time_linear_1(emb)))
        h = self.conv_in(sample)
        skips = [h]
        for block in self.down:
            for i, res in enumerate(block.resnets):
                h = res(h, emb)
                if block.attentions is not None:
                    h = block.attentions[i](h, encoder_hidden_states)
                skips.append(h)
            if block.downsample is not None:
                h = block.downsample(h)
                skips.append(h)
        h = self.mid_res1(h, emb)
        h = self.mid_attn(h, encoder_hidden_states)
        h = self.mid_res2(h, emb)
        for block in self.up:
            for i, res in enumerate(block.resnets):
                h = res(torch.cat([h, skips.pop()], dim=1), emb)
                if block.attentions is not None:
                    h = block.attentions[i](h, encoder_hidden_states)
            if block.upsample is not None:
                h = block.upsample(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# ------------------------------------------------------------------------------------------------
# CLIP text tower


class ClipLayer(nn.Module):
    """Pre-LayerNorm transformer layer with causal self-attention and a quick-GELU MLP."""

    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.self_attn = Attention(dim, heads, qkv_bias=True)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask=mask)
        h = self.fc1(self.layer_norm2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


class ClipTextModel(nn.Module):
    """CLIP's text transformer: token and position embeddings, causal layers, a final LayerNorm.

    Outputs the last hidden states (the UNet's condition) and the pooled state at the end token
    (the highest token id of each sequence, as in CLIP's vocabulary).
    """

    def __init__(self, cfg):
        super().__init__()
        dim = cfg["hidden_size"]
        self.token_embedding = nn.Embedding(cfg["vocab_size"], dim)
        self.position_embedding = nn.Embedding(cfg["max_position_embeddings"], dim)
        self.layers = nn.ModuleList(
            ClipLayer(dim, cfg["num_attention_heads"], cfg["intermediate_size"],
                      cfg["layer_norm_eps"]) for _ in range(cfg["num_hidden_layers"]))
        self.final_layer_norm = nn.LayerNorm(dim, eps=cfg["layer_norm_eps"])

    def forward(self, input_ids):
        ids = input_ids.to(torch.int64)
        n = ids.shape[1]
        positions = torch.arange(n, dtype=torch.int64)[None, :]
        x = self.token_embedding(ids) + self.position_embedding(positions)
        mask = torch.full((n, n), -1e4, dtype=x.dtype).triu(1)[None, None]
        for layer in self.layers:
            x = layer(x, mask)
        x = self.final_layer_norm(x)
        pooled = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return x, pooled


# ------------------------------------------------------------------------------------------------
# VAE


class VaeAttention(nn.Module):
    """Single-head self-attention over the H·W positions, GroupNorm first, residual."""

    def __init__(self, channels, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.attn = Attention(channels, 1, qkv_bias=True)

    def forward(self, x):
        b, c, hgt, wid = x.shape
        h = self.group_norm(x).reshape(b, c, hgt * wid).transpose(1, 2)
        h = self.attn(h).transpose(1, 2).reshape(b, c, hgt, wid)
        return x + h


class VaeMid(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.res1 = ResnetBlock(channels, channels, groups, 1e-6)
        self.attn = VaeAttention(channels, groups)
        self.res2 = ResnetBlock(channels, channels, groups, 1e-6)

    def forward(self, x):
        return self.res2(self.attn(self.res1(x)))


class VaeDecoder(nn.Module):
    """The SD VAE's decoder with its post-quantisation conv: latent → image in [-1, 1] (roughly)."""

    def __init__(self, cfg):
        super().__init__()
        ch = list(reversed(cfg["block_out_channels"]))
        groups, layers = cfg["norm_num_groups"], cfg["layers_per_block"]
        self.post_quant_conv = nn.Conv2d(cfg["latent_channels"], cfg["latent_channels"], 1)
        self.conv_in = nn.Conv2d(cfg["latent_channels"], ch[0], 3, padding=1)
        self.mid = VaeMid(ch[0], groups)
        self.up = nn.ModuleList()
        prev = ch[0]
        for level, cout in enumerate(ch):
            block = nn.Module()
            block.resnets = nn.ModuleList(
                ResnetBlock(prev if i == 0 else cout, cout, groups, 1e-6) for i in range(layers + 1))
            block.upsample = Upsample(cout) if level < len(ch) - 1 else None
            self.up.append(block)
            prev = cout
        self.conv_norm_out = nn.GroupNorm(groups, ch[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[-1], cfg["out_channels"], 3, padding=1)
        with torch.no_grad():
            self.conv_out.weight.mul_(0.1)

    def forward(self, latent_sample):
        h = self.mid(self.conv_in(self.post_quant_conv(latent_sample)))
        for block in self.up:
            for res in block.resnets:
                h = res(h)
            if block.upsample is not None:
                h = block.upsample(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class VaeEncoder(nn.Module):
    """The SD VAE's encoder with its quantisation conv: image → mean and log-variance (8 channels)."""

    def __init__(self, cfg):
        super().__init__()
        ch = cfg["block_out_channels"]
        groups, layers = cfg["norm_num_groups"], cfg["layers_per_block"]
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        prev = ch[0]
        for level, cout in enumerate(ch):
            block = nn.Module()
            block.resnets = nn.ModuleList(
                ResnetBlock(prev if i == 0 else cout, cout, groups, 1e-6) for i in range(layers))
            last = level == len(ch) - 1
            block.downsample = None if last else nn.Conv2d(cout, cout, 3, stride=2)
            self.down.append(block)
            prev = cout
        self.mid = VaeMid(ch[-1], groups)
        self.conv_norm_out = nn.GroupNorm(groups, ch[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg["latent_channels"], 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * cfg["latent_channels"], 2 * cfg["latent_channels"], 1)

    def forward(self, sample):
        h = self.conv_in(sample)
        for block in self.down:
            for res in block.resnets:
                h = res(h)
            if block.downsample is not None:
                h = block.downsample(F.pad(h, (0, 1, 0, 1)))  # asymmetric padding, stride 2
        h = self.conv_out(F.silu(self.conv_norm_out(self.mid(h))))
        return self.quant_conv(h)
