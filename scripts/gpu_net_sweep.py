"""Network-alone FP16 frames/s on a CUDA GPU across batch sizes (CUDA graphs on; --compile: Inductor).

    python scripts/gpu_net_sweep.py --size 480x270 --models compact srgan --batches 1 4 8 16 32

Random weights (speed does not depend on them). Times ``TorchBackend.time_network`` (CUDA events
on device-resident input). Prints one line per case and writes --json.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from vsr.backends.torch_backend import TorchBackend
from vsr.models.catalogue import get_spec, new_network


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="480x270")
    ap.add_argument("--models", nargs="+", default=["compact", "srgan"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8, 16, 32])
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--json", default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile the networks (max-autotune)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    if not torch.cuda.is_available():
        print("gpu_net_sweep: needs a CUDA GPU", file=sys.stderr)
        return 2
    rows = []
    for model in args.models:
        spec = get_spec(model)
        for b in args.batches:
            torch.manual_seed(0)
            be = TorchBackend(spec, device="cuda", net=new_network(spec.arch), compile=args.compile)
            ms = be.time_network(h, w, batch=b, iters=args.iters)
            be.close()
            rows.append(
                {"model": model, "batch": b, "compile": args.compile, "ms_per_frame": ms, "fps": 1000.0 / ms}
            )
            print(f"{model:10s} batch {b:3d}  {ms:7.3f} ms/frame  {1000.0 / ms:8.1f} fps", flush=True)
    print(torch.cuda.get_device_name(), torch.__version__)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "size": args.size, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
