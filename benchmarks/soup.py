"""A model soup (Wortsman et al., 2022): the weights of several checkpoints of one
recipe, trained from the same start with different seeds, averaged into one checkpoint. It
costs nothing at run time (one network, as before) and tends to hold up better on data none
of them trained on than any one of them.

    python3 benchmarks/soup.py runs/zoo_cpu/a/last.pt runs/zoo_cpu/b/last.pt -o soup.pt
    python3 benchmarks/soup.py a.pt b.pt --weights 1 3 -o soup.pt   # a quarter a, three b

``--weights`` leans the mean towards some ingredients (normalised to sum to 1; the default is
equal), for two stages of one run whose halfway point is worse than either on something.

The checkpoints must share architecture, model arguments and classes; the first one's
metadata (preprocessing, classes, config) is kept, with ``soup_of`` naming the ingredients.
BatchNorm's running statistics are averaged like the weights. Written with FP16 weights
(``checkpoint.slim``), as segrt ships checkpoints.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch

from segrt.errors import SegrtError
from segrt.train import checkpoint


def soup(paths: list[Path], weights: list[float] | None = None) -> dict:
    if weights is None:
        weights = [1.0] * len(paths)
    if len(weights) != len(paths) or not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise SegrtError(f"--weights {' '.join(map(str, weights))}: give one weight of 0 or more per "
                         f"checkpoint ({len(paths)}), finite, not all 0")
    share = torch.tensor(weights, dtype=torch.float64) / sum(weights)
    ckpts = [checkpoint.load(p) for p in paths]
    for path, c in zip(paths, ckpts, strict=True):
        if not isinstance(c.get("state_dict"), dict):
            raise SegrtError(f"{path}: a segrt checkpoint without weights (no state_dict); "
                             "give a training run's best.pt or last.pt")
        if c.get("eval_only"):
            raise SegrtError(f"{path}: eval-only ({c['eval_only']}); give a training run's best.pt or last.pt")
    first = ckpts[0]
    for path, c in zip(paths[1:], ckpts[1:], strict=True):
        for key in ("model", "model_args", "classes"):
            if c.get(key) != first.get(key):
                raise SegrtError(f"{path}: its {key} differs from {paths[0]}'s; a soup needs one recipe's runs")
        if c["state_dict"].keys() != first["state_dict"].keys():
            raise SegrtError(f"{path}: its parameters differ from {paths[0]}'s; a soup needs one recipe's runs")
    state = {}
    for k, v in first["state_dict"].items():
        if v.is_floating_point():
            stacked = torch.stack([c["state_dict"][k].double() for c in ckpts])
            state[k] = torch.tensordot(share, stacked, dims=1).float()
        else:  # integer buffers (BatchNorm's batch counter): the first one's
            state[k] = v
    out = {**first, "state_dict": state, "soup_of": [str(p) for p in paths]}
    if len(set(weights)) > 1:
        out["soup_weights"] = [round(float(w), 6) for w in share]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--weights", type=float, nargs="+", metavar="W",
                    help="one weight per checkpoint (default: equal); normalised to sum to 1")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    if len(args.checkpoints) < 2:
        ap.error("give at least two checkpoints")
    if args.output.exists():
        ap.error(f"{args.output}: exists; give a new file name")
    try:
        mixed = soup(args.checkpoints, args.weights)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.output.parent) as tmp:
            full = Path(tmp) / "soup.pt"
            checkpoint.save(full, mixed)
            checkpoint.slim(full, args.output)
    except (SegrtError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    how = "mean" if "soup_weights" not in mixed else f"weighted mean ({', '.join(map(str, mixed['soup_weights']))})"
    print(f"wrote {args.output}: the {how} of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
