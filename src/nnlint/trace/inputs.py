"""Input specs like `float32[B,3,32,32]` and the choice of the free sizes in them.

Pure Python (no torch): the checker validates config specs with it, the worker builds tensors from
the parsed form. Free sizes (B, T, H, W, ...) are small primes that divide no parameter dimension, so
a batch dimension that moves, vanishes or is merged stays identifiable from traced shapes alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DTYPES = {
    "float32": "float32", "float": "float32", "f32": "float32",
    "float64": "float64", "double": "float64", "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "int64": "int64", "long": "int64", "int": "int64",
    "int32": "int32", "int16": "int16", "uint8": "uint8", "bool": "bool",
}
INT_DTYPES = frozenset({"int64", "int32", "int16", "uint8", "bool"})

# Small primes for batch/sequence sizes, larger ones for spatial sizes (they survive several
# stride-2 downsamplings).
SMALL_PRIMES = (5, 7, 3, 11, 13, 17, 19, 23, 29, 31)
SPATIAL_PRIMES = (37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83)

_SPEC = re.compile(r"^\s*([A-Za-z0-9_]+)\s*\[([^\]]*)\]\s*$")


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    dims: tuple[int | str, ...]  # an int, or a symbol such as "B" bound by choose_sizes

    @property
    def is_int(self) -> bool:
        return self.dtype in INT_DTYPES

    def symbols(self) -> list[str]:
        return [d for d in self.dims if isinstance(d, str)]

    def shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else sizes[d] for d in self.dims)

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.dims)}]"


def parse_spec(text: str) -> TensorSpec:
    match = _SPEC.match(text)
    if not match:
        raise SpecError(f"invalid input spec {text!r} (expected e.g. float32[B,3,32,32])")
    dtype = DTYPES.get(match.group(1).lower())
    if dtype is None:
        raise SpecError(f"unknown dtype {match.group(1)!r} in input spec {text!r}")
    dims: list[int | str] = []
    for part in match.group(2).split(","):
        part = part.strip()
        if not part:
            continue
        if part.isdigit():
            dims.append(int(part))
        elif part.isidentifier():
            dims.append(part)
        else:
            raise SpecError(f"invalid dimension {part!r} in input spec {text!r}")
    return TensorSpec(dtype, tuple(dims))


@dataclass(frozen=True)
class InputSpec:
    """The inputs of one forward call: positional specs and keyword specs."""

    args: tuple[TensorSpec, ...] = ()
    kwargs: tuple[tuple[str, TensorSpec], ...] = ()

    def all_specs(self) -> list[TensorSpec]:
        return list(self.args) + [spec for _, spec in self.kwargs]

    def config_value(self) -> str:
        """The TOML value of `input = ...` that reproduces these inputs."""
        if self.kwargs and not self.args:
            return "{ " + ", ".join(f'{k} = "{s}"' for k, s in self.kwargs) + " }"
        if len(self.args) == 1:
            return f'"{self.args[0]}"'
        return "[" + ", ".join(f'"{s}"' for s in self.args) + "]"


def parse_input(value) -> InputSpec:
    """A config `input`: a spec string, a list of them, or a table name -> spec."""
    if isinstance(value, str):
        return InputSpec((parse_spec(value),))
    if isinstance(value, (list, tuple)):
        return InputSpec(tuple(parse_spec(v) for v in value))
    if isinstance(value, dict):
        return InputSpec((), tuple((str(k), parse_spec(v)) for k, v in value.items()))
    raise SpecError(f"invalid input {value!r}: expected a spec string, a list or a table")


def _factors(n: int) -> set[int]:
    out, p = set(), 2
    while p * p <= n:
        while n % p == 0:
            out.add(p)
            n //= p
        p += 1
    if n > 1:
        out.add(n)
    return out


def choose_sizes(symbols: list[str], param_dims: set[int], *, batch: int | None = None,
                 spatial: tuple[str, ...] = ()) -> dict[str, int]:
    """Distinct primes for the free sizes, avoiding every prime factor of a parameter dimension.

    `spatial` symbols draw from larger primes. When every prime is taken or divides a parameter
    dimension, the one dividing the fewest dimensions is used: the test degrades, it never fails.
    """
    divisors = set()
    for dim in param_dims:
        if 1 < dim < 1_000_000:
            divisors |= _factors(dim)
    sizes: dict[str, int] = {}
    used: set[int] = set()
    if batch is not None and "B" in symbols:
        sizes["B"] = batch
        used.add(batch)
    for symbol in dict.fromkeys(symbols):
        if symbol in sizes:
            continue
        pool = SPATIAL_PRIMES if symbol in spatial else SMALL_PRIMES
        free = [p for p in pool if p not in used]
        clean = [p for p in free if p not in divisors]
        pick = clean[0] if clean else min(free, key=lambda p: sum(d % p == 0 for d in param_dims))
        sizes[symbol] = pick
        used.add(pick)
    return sizes


GUESSED = "$guessed"  # in fixed sizes: they are blind guesses, not declared by the model or the code


def resized(sizes: dict, free: set[str], param_dims: set[int], *, spatial: tuple[str, ...] = ()) -> dict:
    """Independent sizes for a second input: every symbol in `free` (and every fixed size that was
    a blind guess) gets another prime, distinct from all sizes of the first input."""
    divisors = set()
    for dim in param_dims:
        if 1 < dim < 1_000_000:
            divisors |= _factors(dim)
    change = {k for k in sizes if not k.startswith("$") and (k in free or GUESSED in sizes)}
    used = {v for v in sizes.values() if isinstance(v, int) and not isinstance(v, bool)}
    out = dict(sizes)
    for symbol in sorted(change):
        pool = SPATIAL_PRIMES if symbol in spatial else SMALL_PRIMES
        free_primes = [p for p in pool if p not in used]
        clean = [p for p in free_primes if p not in divisors]
        if not free_primes:
            continue
        out[symbol] = clean[0] if clean else free_primes[0]
        used.add(out[symbol])
    return out
