"""Warm starts: initialise a generator from a trained relative's weights before training it."""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

__all__ = ["init_deepened", "init_matching"]

log = logging.getLogger("training")


def init_matching(net: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load the tensors of ``state`` whose name and shape match ``net``'s; returns the names left alone.

    Equal architectures load completely (srresnet -> srgan); a smaller relative (fast -> fast-lite)
    starts from its parent's matching layers, the rest keeps its random initialisation (logged).
    """
    own = net.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not take:
        raise ValueError("init_from: no tensor of the checkpoint matches this network")
    net.load_state_dict(take, strict=False)
    left = sorted(set(own) - set(take))
    if left:
        log.info(
            "init_from: %d tensors loaded, %d left at random init: %s", len(take), len(left), ", ".join(left)
        )
    return left


def init_deepened(net: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Start a deeper FastNet from a shallower trained one, computing the same function (Net2DeeperNet).

    The parent's convs fill the first and the output positions; every extra 3x3 conv in between
    starts as the identity (a Dirac kernel, zero bias) followed by a PReLU of slope 1, so the
    child's output at step 0 equals the parent's and training only has to add to it. Both nets
    must be ``body``-Sequential FastNets whose extra layers have the width of the parent's last
    hidden layer. Returns the names of the tensors initialised as identities.
    """
    own = net.state_dict()
    body = re.compile(r"body\.\d+\.(weight|bias)")
    if not all(body.fullmatch(k) for k in (*own, *state)):
        raise ValueError("init_deepen: the checkpoint is not a shallower FastNet of this network")
    convs = sorted({int(k.split(".")[1]) for k in own if k.endswith(".weight") and own[k].dim() == 4})
    parent = sorted({int(k.split(".")[1]) for k in state if k.endswith(".weight") and state[k].dim() == 4})
    if len(convs) < len(parent) or not parent:
        raise ValueError("init_deepen: the checkpoint is not a shallower FastNet of this network")
    # parent's hidden convs map to the first positions, its output conv to the last
    mapping = {p: c for p, c in zip(parent[:-1], convs[: len(parent) - 1], strict=True)}
    mapping[parent[-1]] = convs[-1]
    new_state: dict[str, torch.Tensor] = {}
    for p, c in mapping.items():
        for suffix in ("weight", "bias"):
            new_state[f"body.{c}.{suffix}"] = state[f"body.{p}.{suffix}"]
        if f"body.{p + 1}.weight" in state and p != parent[-1]:
            new_state[f"body.{c + 1}.weight"] = state[f"body.{p + 1}.weight"]  # its PReLU
    inserted: list[str] = []
    for c in convs[len(parent) - 1 : -1]:
        w = own[f"body.{c}.weight"]
        if w.shape[0] != w.shape[1]:
            raise ValueError(f"init_deepen: inserted conv body.{c} is not square ({tuple(w.shape)})")
        eye = torch.zeros_like(w)
        torch.nn.init.dirac_(eye)
        new_state[f"body.{c}.weight"] = eye
        new_state[f"body.{c}.bias"] = torch.zeros_like(own[f"body.{c}.bias"])
        new_state[f"body.{c + 1}.weight"] = torch.ones_like(own[f"body.{c + 1}.weight"])
        inserted += [f"body.{c}.weight", f"body.{c}.bias", f"body.{c + 1}.weight"]
    mismatched = [k for k, v in new_state.items() if k not in own or own[k].shape != v.shape]
    if mismatched or set(new_state) != set(own):
        raise ValueError(f"init_deepen: shapes do not line up ({', '.join(mismatched) or 'missing tensors'})")
    net.load_state_dict(new_state)
    log.info(
        "init_deepen: %d parent layers loaded, %d identity convs inserted", len(parent), len(inserted) // 3
    )
    return inserted
