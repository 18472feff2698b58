#!/bin/bash
# scaling of config n after the native kernels: torchspike vs snnTorch, alternating, 2 threads
cd "$(dirname "$0")/.."
for v in "--steps 25" "--steps 100" "--batch 8" "--batch 64" "--density 0.005" "--density 0.05" "--density 0.1" "--density 0.2"; do
  for peer in torchspike snntorch; do
    py=.venv/bin/python; [ $peer = snntorch ] && py=.venv-peers/bin/python
    out=$($py bench/peers/time_peer.py --peer $peer --config n --threads 2 --repeats 5 --warmup 2 $v 2>/dev/null | tail -1)
    echo "$v | $peer | $out"
  done
done
