"""The precision a search trains in: float32, or a Keras mixed-precision policy where the
hardware has a fast path for it.

`auto` picks `mixed_float16` on GPUs of compute capability 7.0 or more (tensor cores; Keras's
standard speed-up there), `mixed_bfloat16` for `scratch` on CPUs with AMX (`amx_bf16`: oneDNN runs
bfloat16 matrix products on the tiles) and float32 everywhere else. On an AMX CPU the backbone
methods stay float32: their cached blocks trained no faster in bfloat16 (VGG-16) or 2.1-2.3x
slower (MobileNetV2); on an AVX-512 BF16 CPU without AMX the search space's models
trained little or no faster in bfloat16 (benchmarks/README.md has the measurements).
Mixed policies keep the variables, the softmax output and the loss in float32 (Keras scales a
float16 loss itself); models are saved in float32 (`search_spaces.float32_copy`), so they load
and predict alike on any machine.
"""

from __future__ import annotations

import dataclasses

from tuning.config import SearchConfig

AUTO = "auto"
FLOAT16_CAPABILITY = (7, 0)


@dataclasses.dataclass(frozen=True)
class Choice:
    policy: str  # a Keras dtype policy name
    why: str  # e.g. "auto: AMX CPU"

    def describe(self) -> str:
        return f"precision {self.policy} ({self.why})"


def choose(
    requested: str, gpus: list[tuple[int, int]] | None = None, flags=None, method: str = "scratch"
) -> Choice:
    """The policy for `requested` ("auto" or a policy name) on this machine, for a `method`
    search.

    Args:
        gpus: the compute capabilities of the visible GPUs (None: ask TensorFlow).
        flags: the CPU's feature flags as /proc/cpuinfo spells them (None: this CPU's).
    """
    if requested != AUTO:
        return Choice(requested, "chosen by you")
    gpus = gpu_capabilities() if gpus is None else gpus
    if gpus:
        lowest = min(gpus)
        if lowest >= FLOAT16_CAPABILITY:
            return Choice("mixed_float16", f"auto: GPU of compute capability {_dotted(lowest)}")
        return Choice("float32", f"auto: GPU of compute capability {_dotted(lowest)}, below 7.0")
    if flags is None:
        from tuning.host.cpu import cpu_flags

        flags = cpu_flags()
    if "amx_bf16" in flags:
        if method == "scratch":
            return Choice("mixed_bfloat16", "auto: AMX CPU")
        return Choice("float32", "auto: AMX CPU, but backbone blocks train no faster in bfloat16")
    return Choice("float32", "auto: no AMX on this CPU, so no fast bfloat16")


def resolve(config: SearchConfig, recorded: SearchConfig | None) -> tuple[SearchConfig, Choice]:
    """`config` with its precision made concrete: a resumed search (`recorded`: what its run
    directory holds) keeps the precision it recorded when `auto` is asked (an explicit other
    one is the identity check's to refuse), a new one takes `choose`'s."""
    if config.precision == AUTO and recorded is not None:
        choice = Choice(recorded.precision, "auto: as the search recorded it")
        return dataclasses.replace(config, precision=recorded.precision), choice
    choice = choose(config.precision, method=config.method)
    return dataclasses.replace(config, precision=choice.policy), choice


def policy_of(config: SearchConfig) -> str:
    """The policy `config` trains in ("auto" chosen for this machine)."""
    if config.precision != AUTO:
        return config.precision
    return choose(AUTO, method=config.method).policy


def gpu_capabilities() -> list[tuple[int, int]]:
    """(major, minor) compute capability of each GPU TensorFlow sees."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        found.append(tuple(capability) if capability else (0, 0))
    return found


def _dotted(capability: tuple[int, int]) -> str:
    return ".".join(map(str, capability))
