"""The CPU we run on, and oneDNN: TensorFlow's fast x86 kernels, which it leaves off on most CPUs.

On Linux x86, TensorFlow 2.x turns oneDNN on by itself only on CPUs with one of
`TENSORFLOW_ONEDNN_FEATURES` (AVX512-VNNI and newer: `IsMKLEnabled` in
tensorflow/core/util/util.cc). Elsewhere (AVX2-only CPUs such as AMD Zen 2/3, many Intel desktops,
AVX-512 Xeons without VNNI) it trains on Eigen kernels, several times slower for convolutions
(benchmarks/README.md has the measurements). So `import tuning` sets
TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow reads it (at its import), unless the user set it: any
value of theirs wins, and `onednn_line()` says which of the two decided.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

ONEDNN = "TF_ENABLE_ONEDNN_OPTS"
OURS = "CIFAR_TUNE_SET_ONEDNN"  # beside ONEDNN when we set it: child processes inherit both
# Any of these and TensorFlow enables oneDNN itself (Linux; names as /proc/cpuinfo spells them).
TENSORFLOW_ONEDNN_FEATURES = (
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
# What a results file records of the CPU: the features that decide oneDNN's default and speed.
RECORDED_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
)

_why = "TensorFlow's default"  # why oneDNN is as it is; set by `prefer_onednn`
_user_value: str | None = None  # TF_ENABLE_ONEDNN_OPTS as the user set it, if they did


def prefer_onednn() -> None:
    """Turns oneDNN on where TensorFlow would leave it off (Linux x86), unless the user chose.

    Runs on `import tuning`, before TensorFlow's import reads the setting; if TensorFlow was
    imported first the setting comes too late, and `onednn_line()` says so.
    """
    global _why, _user_value
    if ONEDNN in os.environ and os.environ[ONEDNN] != os.environ.get(OURS):
        _user_value = os.environ[ONEDNN]
        _why = f"{ONEDNN}={_user_value} set by you"
    elif ONEDNN in os.environ:  # equal to OURS: an earlier call enabled it
        _why = f"enabled by cifar-tune: {cpu_kind()} CPU"
    elif not _linux_x86():
        _why = f"TensorFlow's default on {platform.machine() or sys.platform}"
    elif tensorflow_enables_onednn():
        _why = f"TensorFlow's default on this {cpu_kind()} CPU"
    elif "tensorflow" in sys.modules:
        _why = (
            f"TensorFlow was imported before cifar-tune could enable it; set {ONEDNN}=1 "
            f"before importing TensorFlow"
        )
    else:
        os.environ[ONEDNN] = os.environ[OURS] = "1"
        _why = f"enabled by cifar-tune: {cpu_kind()} CPU"


def user_setting() -> str | None:
    """TF_ENABLE_ONEDNN_OPTS as the user set it before `import tuning`, or None."""
    return _user_value


def onednn_on() -> bool:
    """Whether TensorFlow itself reports its oneDNN kernels on (imports TensorFlow)."""
    from tuning.host.internals import onednn_enabled

    return onednn_enabled()


def onednn_line() -> str:
    """E.g. "oneDNN on (enabled by cifar-tune: AVX2 CPU)", as TensorFlow reports it."""
    return f"oneDNN {'on' if onednn_on() else 'off'} ({_why})"


def tensorflow_enables_onednn() -> bool:
    """Whether TensorFlow alone would turn oneDNN on here (see the module docstring)."""
    return _linux_x86() and any(flag in cpu_flags() for flag in TENSORFLOW_ONEDNN_FEATURES)


def cpu_kind() -> str:
    """The newest vector extension that matters here: "AMX", "AVX512-VNNI", ..., "AVX2", "SSE"."""
    flags = cpu_flags()
    for flag, kind in (
        ("amx_tile", "AMX"),
        ("avx512_vnni", "AVX512-VNNI"),
        ("avx_vnni", "AVX-VNNI"),
        ("avx512f", "AVX-512"),
        ("avx2", "AVX2"),
        ("avx", "AVX"),
    ):
        if flag in flags:
            return kind
    return "SSE" if _linux_x86() else platform.machine()


def cpu_facts() -> dict:
    """The CPU's model, cores and the features in `RECORDED_FEATURES`, for results files."""
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_kind": cpu_kind(),
        "cpu_features": {flag: flag in flags for flag in RECORDED_FEATURES},
    }


@functools.cache
def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


@functools.cache
def cpu_flags() -> frozenset:
    return frozenset(_cpuinfo_field("flags").split())


def _cpuinfo_field(name: str) -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


def _linux_x86() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
