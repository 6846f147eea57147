"""Classes that cannot be built or fed alone, checked the way the code builds them: inside a traced
model that contains them, with the inputs that model passes (`Attention(args)(x, freqs_cis)` inside
a `Transformer`). Worker side; torch is imported by the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Traced:
    """A model that traced: enough to build and feed it again."""

    name: str
    build: Any
    spec: Any
    sizes: dict
    fake: bool
    trusted: bool  # its input came from the code or the config, not a guess


@dataclass
class Captured:
    parent: Traced
    module: Any
    args: tuple
    kwargs: dict


def capture(wanted: set[type], traced: list[Traced], rebuild, make_tensors, forward) -> dict[type, Captured]:
    """The first instance of each wanted class met in the forward pass of a traced model, with the
    inputs it received. `rebuild(traced)` builds a parent again (on meta for the fake path)."""
    found: dict[type, Captured] = {}
    for parent in traced:
        missing = wanted - set(found)
        if not missing:
            break
        model = rebuild(parent)
        if model is None or not any(type(m) in missing for m in model.modules()):
            continue

        def hook(module, args, kwargs, parent=parent, missing=missing):
            if type(module) in missing and type(module) not in found:
                detach = lambda v: v.detach().clone() if hasattr(v, "detach") and not v.is_meta else v  # noqa: E731
                found[type(module)] = Captured(parent, module, tuple(detach(a) for a in args),
                                               {k: detach(v) for k, v in kwargs.items()})

        handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in model.modules()
                   if type(m) in missing]
        device = "meta" if parent.fake else "cpu"
        try:
            args, kwargs = make_tensors(parent.spec, parent.sizes, model, device)
            forward(model, args, kwargs, device)
        except Exception:  # noqa: BLE001 - what was captured before the failure still counts
            pass
        finally:
            for handle in handles:
                handle.remove()
    return found
