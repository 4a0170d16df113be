"""Training throughput of the ConvAE: optimised path vs plain fp32 eager, measured in the same run.

Optimised: bf16 autocast + channels-last (+ ``torch.compile`` with ``--compile``, default on a GPU).
Baseline: fp32, contiguous memory, eager. Both train the same model on the same random batches with
the reference recipe's step (BCE, Adam 1e-3). The last line printed is one JSON object:
``{"images_per_s", "baseline_images_per_s", "speedup", "device", ...}``.

Usage: ``python benchmarks/train_throughput.py [--batch-size 64] [--image-size 128] [--steps N]``
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from phenolapse.models.convae import ConvAE
from phenolapse.training.loop import resolve_device, train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    *,
    device: torch.device,
    batch_size: int,
    image_size: int,
    steps: int,
    warmup: int,
    amp: bool,
    channels_last: bool,
    compile_model: bool,
) -> float:
    """Images per second of ``steps`` training steps after ``warmup`` steps."""
    torch.manual_seed(0)
    model = ConvAE().to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    net: torch.nn.Module = torch.compile(model) if compile_model else model  # type: ignore[assignment]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    batches = [
        torch.rand(batch_size, 1, image_size, image_size, generator=gen).to(device)
        for _ in range(4)
    ]
    for i in range(warmup):
        train_step(net, batches[i % 4], opt, amp=amp, channels_last=channels_last)
    _sync(device)
    t0 = time.perf_counter()
    loss = torch.zeros((), device=device)
    for i in range(steps):
        loss = train_step(net, batches[i % 4], opt, amp=amp, channels_last=channels_last)
    _sync(device)
    elapsed = time.perf_counter() - t0
    if not torch.isfinite(loss):
        raise RuntimeError(f"non-finite loss {float(loss)}")
    return steps * batch_size / elapsed


def main() -> None:
    """Parse arguments, run both configurations, print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (GPU 200, CPU 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (GPU 20, CPU 1)")
    parser.add_argument("--compile", dest="compile_model", action="store_true", default=None)
    parser.add_argument("--no-compile", dest="compile_model", action="store_false")
    args = parser.parse_args()

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    steps = args.steps or (200 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (20 if gpu else 1)
    compile_model = gpu if args.compile_model is None else args.compile_model
    if gpu:
        torch.backends.cudnn.benchmark = True
    common = {"device": device, "batch_size": args.batch_size, "image_size": args.image_size,
              "steps": steps, "warmup": warmup}
    baseline = measure(amp=False, channels_last=False, compile_model=False, **common)
    optimised = measure(amp=True, channels_last=True, compile_model=compile_model, **common)
    name = torch.cuda.get_device_name(device) if gpu else f"cpu ({torch.get_num_threads()} threads)"
    print(f"baseline fp32 eager: {baseline:.1f} images/s; "
          f"bf16 + channels-last{' + compile' if compile_model else ''}: {optimised:.1f} images/s")
    print(json.dumps({
        "images_per_s": round(optimised, 2),
        "baseline_images_per_s": round(baseline, 2),
        "speedup": round(optimised / baseline, 3),
        "device": name,
        "optimised": f"bf16 autocast + channels_last{' + torch.compile' if compile_model else ''}",
        "baseline": "fp32 eager, contiguous",
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "steps": steps,
    }))


if __name__ == "__main__":
    main()
