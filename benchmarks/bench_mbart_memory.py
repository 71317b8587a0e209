"""Memory per batch of hbt's mBART-50 encoder: measured on CPU with a small config, scaled by parameter count to
mbart-large-50's encoder, beside an analytic GPU estimate.

    python benchmarks/bench_mbart_memory.py [--batch-size 32] [--seq-len 128] [--json]

Each measurement runs in a fresh child process: peak RSS (ru_maxrss) after building the model, then after one
batch, for an encode batch (forward, no gradients) and a training step (forward + backward + AdamW step, embeddings
trainable). The CPU figure for mbart-large-50 is the small config's per-batch growth x (large / small parameters):
a rough scaling, as the issue asks (activations grow with d_model x layers, not exactly with parameters).

GPU estimate (mbart-large-50 encoder, bf16 autocast, AdamW): weights, gradients and AdamW moments in fp32 =
16 bytes per trainable parameter (4 for a frozen one), plus activations kept for backward, per layer
s*b*h*(34 + 5*a*s/h) bytes (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", section 4.1; 16-bit activations, no recomputation). Encoding keeps only one layer's activations at a time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from typing import Any

SMALL = {"d_model": 256, "encoder_layers": 4, "encoder_attention_heads": 4, "encoder_ffn_dim": 1024, "vocab": 32000}
LARGE = {"d_model": 1024, "encoder_layers": 12, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
         "vocab": 250054}  # fmt: skip  # facebook/mbart-large-50's config.json


def _config(shape: dict[str, int]) -> Any:
    from transformers import MBartConfig

    return MBartConfig(
        vocab_size=shape["vocab"], d_model=shape["d_model"], encoder_layers=shape["encoder_layers"],
        decoder_layers=1, encoder_attention_heads=shape["encoder_attention_heads"],
        decoder_attention_heads=shape["encoder_attention_heads"], encoder_ffn_dim=shape["encoder_ffn_dim"],
        decoder_ffn_dim=shape["encoder_ffn_dim"], max_position_embeddings=1024, dropout=0.1, scale_embedding=True,
    )  # fmt: skip


def encoder_parameters(shape: dict[str, int]) -> tuple[int, int]:
    """(all, embedding) parameters of an mBART encoder of this shape, counted on the meta device (no memory)."""
    import torch
    from transformers.models.mbart.modeling_mbart import MBartEncoder

    with torch.device("meta"):
        encoder = MBartEncoder(_config(shape))
    total = sum(p.numel() for p in encoder.parameters())
    return total, encoder.embed_tokens.weight.numel()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, batch: int, seq: int) -> None:
    import torch
    from transformers.models.mbart.modeling_mbart import MBartEncoder

    torch.manual_seed(0)
    torch.set_num_threads(1)
    encoder = MBartEncoder(_config(SMALL))
    ids = torch.randint(4, SMALL["vocab"], (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-5) if kind == "train" else None
    before = _rss_mb()
    if optimizer is None:
        encoder.eval()
        with torch.no_grad():
            encoder(input_ids=ids, attention_mask=mask).last_hidden_state.mean()
    else:
        encoder.train()
        loss = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.pow(2).mean()
        loss.backward()
        optimizer.step()
    print(json.dumps({"before_mb": before, "peak_mb": _rss_mb()}))


def measure(kind: str, batch: int, seq: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--batch-size", str(batch), "--seq-len", str(seq)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def gpu_estimate_gb(batch: int, seq: int, train: bool, freeze_embeddings: bool = False) -> float:
    total, embed = encoder_parameters(LARGE)
    trainable = total - (embed if freeze_embeddings else 0)
    states = (16 * trainable + 4 * (total - trainable)) if train else 2 * total  # encode: bf16 weights
    h, a, layers = LARGE["d_model"], LARGE["encoder_attention_heads"], LARGE["encoder_layers"]
    per_layer = seq * batch * h * (34 + 5 * a * seq / h)
    activations = per_layer * (layers if train else 1)
    return (states + activations) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=["encode", "train"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.batch_size, args.seq_len)
        return
    small_total, _ = encoder_parameters(SMALL)
    large_total, large_embed = encoder_parameters(LARGE)
    ratio = large_total / small_total
    rows = {}
    for kind in ("encode", "train"):
        m = measure(kind, args.batch_size, args.seq_len)
        growth = m["peak_mb"] - m["before_mb"]
        rows[kind] = {
            "small_model_mb": round(m["before_mb"], 1),
            "small_batch_growth_mb": round(growth, 1),
            "large_cpu_scaled_gb": round(growth * ratio / 1024, 2),
            "large_gpu_estimate_gb": round(gpu_estimate_gb(args.batch_size, args.seq_len, kind == "train"), 2),
        }
    rows["train"]["large_gpu_estimate_frozen_embeddings_gb"] = round(
        gpu_estimate_gb(args.batch_size, args.seq_len, True, freeze_embeddings=True), 2
    )
    report = {
        "batch": args.batch_size,
        "seq_len": args.seq_len,
        "params": {"small": small_total, "mbart_large_50_encoder": large_total, "of_which_embedding": large_embed},
        "scale": round(ratio, 2),
        **rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"parameters: small {small_total / 1e6:.1f}M, mbart-large-50 encoder {large_total / 1e6:.1f}M "
          f"({large_embed / 1e6:.1f}M embedding); scale x{ratio:.1f}")  # fmt: skip
    print(f"batch {args.batch_size} x {args.seq_len} tokens")
    print(f"{'':8} {'small: batch growth (CPU, measured)':>36} {'large: CPU scaled':>18} {'large: GPU est.':>16}")
    for kind in ("encode", "train"):
        r = rows[kind]
        print(f"{kind:8} {r['small_batch_growth_mb']:>33.1f} MB {r['large_cpu_scaled_gb']:>15.2f} GB "
              f"{r['large_gpu_estimate_gb']:>13.2f} GB")  # fmt: skip
    print(f"train with frozen embeddings (hbt's CPU default), GPU est.: "
          f"{rows['train']['large_gpu_estimate_frozen_embeddings_gb']:.2f} GB")  # fmt: skip


if __name__ == "__main__":
    main()
