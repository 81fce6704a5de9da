#!/usr/bin/env bash
# Train `compact` beside `srresnet` -> `srgan` on one GPU inside a fixed lease (the device machine).
#
#   training/gpu_lease.sh start DATA COMPACT_MIN SRRESNET_MIN SRGAN_MIN
#       DATA holds train/T91, train/BSD200 and val/Set5; it is linked as ../shared/data, where the
#       configs look. The jobs run detached (setsid), each fitted to its minutes (--minutes), and
#       log to runs/NAME.log; srgan (stage 2) starts from srresnet's best checkpoint when stage 1 ends.
#   training/gpu_lease.sh collect OUT
#       writes OUT/NAME.pt (step, arch, EMA weights, config: what training.export reads) for every
#       run with a best.pt, and OUT/logs.tar.gz (logs, CSV, PNG curves).
# DEVICE=cpu runs the same on a CPU (a smoke test with tiny minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
device=${DEVICE:-cuda}

case "${1:-}" in
start)
    data=$(realpath "${2:?DATA}")
    mkdir -p ../shared runs
    [ -e ../shared/data ] || ln -s "$data" ../shared/data
    train() { "$py" -m training.train --config "training/configs/$1.toml" --device "$device" --minutes "$2"; }
    setsid bash -c "$(declare -f train); py=$py device=$device; train compact $3" >runs/compact.log 2>&1 </dev/null &
    setsid bash -c "$(declare -f train); py=$py device=$device; train srresnet $4 >runs/srresnet.log 2>&1 &&
        train srgan_l1 $5 >runs/srgan.log 2>&1" </dev/null >/dev/null 2>&1 &
    echo "started: compact ${3} min, srresnet ${4} min then srgan ${5} min (logs in runs/)"
    ;;
collect)
    out=${2:?OUT}
    mkdir -p "$out"
    "$py" - "$out" <<'PY'
import sys
from pathlib import Path

import torch

out = Path(sys.argv[1])
for run in ("compact", "srresnet", "srgan"):
    best = Path("runs") / run / "best.pt"
    if not best.is_file():
        print(f"{run}: no best.pt yet")
        continue
    ck = torch.load(best, map_location="cpu", weights_only=False)
    keep = {k: ck[k] for k in ("step", "model", "arch", "ema", "config", "best_psnr", "budget_steps") if k in ck}
    torch.save(keep, out / f"{run}.pt")
    print(f"{run}: step {ck['step']}, best Set5 {ck['best_psnr']:.3f} dB -> {out / (run + '.pt')}")
PY
    tar czf "$out/logs.tar.gz" runs/*.log runs/*/*.csv runs/*/*.png 2>/dev/null || true
    ;;
*)
    echo "usage: $0 start DATA COMPACT_MIN SRRESNET_MIN SRGAN_MIN | collect OUT" >&2
    exit 2
    ;;
esac
