"""``vsr models``: list both catalogues; ``add``, ``remove`` and ``show`` user models.

``vsr models`` (or ``vsr models list``) prints one row per model, the shipped catalogue first, then
the user catalogue (:mod:`vsr.models.user`): name, tier, colour (``rgb``, ``y``; ``gray`` for a
1-channel model file), params, weights (yes / missing /
corrupt), catalogue (vsr / user), scale, fps (measured when a user model was added; ``-``
otherwise) and description. The columns up to ``weights`` keep their place for scripts.
"""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..models.entries import CATALOGUE
from ..models.spec import ModelSpec
from ..models.user import NAME_RULE, UserModel, find_user_model, user_models, user_models_dir

__all__ = ["add_models_parser"]


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    """The ``models`` sub-command and its actions."""
    m = sub.add_parser(
        "models",
        help="list the models; add, show or remove your own",
        description="List the models vsr ships and the ones you added (the user catalogue, in "
        "$VSR_MODELS_DIR, else $XDG_DATA_HOME/vsr/models, else ~/.local/share/vsr/models). "
        "A model you add works by name wherever a model is asked for.",
    )
    m.set_defaults(func=list_models)
    actions = m.add_subparsers(dest="models_command", metavar="ACTION")
    actions.add_parser("list", help="list both catalogues (the default)").set_defaults(func=list_models)
    add = actions.add_parser(
        "add",
        help="add a model file (.pth .pt .ckpt .safetensors .onnx) to your catalogue",
        description="Copy a model file into the user catalogue with a card: architecture, scale, "
        "parameters, sha256, where it came from and its speed on this machine (timed on a "
        "320x180 frame on the CPU).",
    )
    add.add_argument("path", metavar="PATH", help="the model file")
    add.add_argument("--name", default=None, help=f"its name ({NAME_RULE}; default: the file's stem)")
    add.add_argument("--force", action="store_true", help="replace a user model of that name")
    add.add_argument("--no-measure", action="store_true", help="do not time the model")
    add.set_defaults(func=add_model)
    rm = actions.add_parser("remove", help="remove a model you added", description="Remove a user model.")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=remove_model)
    show = actions.add_parser("show", help="print a model's card", description="Print a model's facts.")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(func=show_model)


def list_models(args: argparse.Namespace) -> int:
    rows = [_row(spec, "vsr", None) for spec in CATALOGUE]
    rows += [_row(m.spec, "user", m) for m in user_models()]
    width = max(len("name"), *(len(r[0]) for r in rows))
    head = ("name", "tier", "colour", "params", "weights", "catalogue", "scale", "fps", "description")
    for r in (head, *rows):
        print(
            f"{r[0]:<{width}} {r[1]:<9} {r[2]:<6} {r[3]:>10}  {r[4]:<8} {r[5]:<9} {r[6]:>5} {r[7]:>6}  {r[8]}"
        )
    return 0


def _row(spec: ModelSpec, catalogue: str, user: UserModel | None) -> tuple[str, ...]:
    state = spec.weights_state
    speed = user.card.speed if user is not None else None
    return (
        spec.name,
        spec.tier,
        _colour(spec),
        f"{spec.params:,}",
        "yes" if state == "ok" else state,  # or missing / corrupt
        catalogue,
        f"x{spec.scale}",
        f"{speed.fps:.1f}" if speed is not None else "-",
        spec.description,
    )


def _colour(spec: ModelSpec) -> str:
    """The colour column: ``gray`` for a 1-channel model file (it runs on luma, see
    :class:`~vsr.backends.base.FrameAdapter`; its spec's ``colour`` stays ``rgb``, which picks
    that path), else the spec's ``colour`` (``rgb``, or ``y`` for the catalogue's luma nets)."""
    return "gray" if spec.path is not None and spec.channels == 1 else spec.colour


def add_model(args: argparse.Namespace) -> int:
    from ..models.install import add_user_model

    model = add_user_model(args.path, args.name, measure=not args.no_measure, force=args.force)
    card = model.card
    speed = f"; {card.speed.describe()}" if card.speed else ""
    print(f"added {model.name}: {card.arch} {card.scale}x, {card.params:,} parameters{speed}")
    print(f"  {model.path}")
    print(f"  run it: vsr upscale IN -o OUT --model {model.name}")
    return 0


def remove_model(args: argparse.Namespace) -> int:
    from ..models.install import remove_user_model

    print(remove_user_model(args.name))
    return 0


def show_model(args: argparse.Namespace) -> int:
    shipped = next((s for s in CATALOGUE if s.name == args.name), None)
    if shipped is not None:
        print(_shipped_card(shipped))
        return 0
    model = find_user_model(args.name)
    if model is None:
        raise ConfigError(
            f"there is no model called {args.name!r} (see `vsr models`; yours: {user_models_dir()})"
        )
    state = model.spec.weights_state
    print(model.card.to_markdown(), end="")
    print(f"\nfile state: {'ok (sha256 matches the card)' if state == 'ok' else state} ({model.path})")
    return 0


def _shipped_card(spec: ModelSpec) -> str:
    rows = [
        ("description", spec.description),
        ("architecture", spec.arch),
        ("scale", f"{spec.scale}x"),
        ("colour", spec.colour),
        ("parameters", f"{spec.params:,}"),
        ("MACs per input pixel", f"{spec.macs_per_pixel:,}"),
        ("tier", spec.tier),
        ("falls back to", spec.fallback or "-"),
        ("weights", f"{spec.weights_path or '-'} ({spec.weights_state})"),
        ("sha256", spec.sha256 or "-"),
    ]
    return "\n".join([f"{spec.name} (ships with vsr)", *(f"  {k}: {v}" for k, v in rows)])
