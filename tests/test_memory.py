"""TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1 keeps tensors out of TensorFlow's never-shrinking pool."""

import os
import platform
import subprocess
import sys

import pytest

from conftest import ROOT

SETTING = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
PROBE = """
import tuning
import tensorflow as tf
big = tf.random.normal([128, 32, 32, 64])  # 32 MB, a scratch CNN's activation
del big
print(tf.config.experimental.get_memory_info("CPU:0")["peak"])
"""


def _pool_peak(setting: str | None) -> int:
    """Peak bytes TensorFlow's CPU pool held in a fresh process that imported `tuning`."""
    env = {k: v for k, v in os.environ.items() if k != SETTING}
    if setting is not None:
        env[SETTING] = setting
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason="TensorFlow's oneDNN pool is the x86 default only")
@pytest.mark.slow
def test_the_lean_memory_setting_keeps_tensors_out_of_tensorflow_s_pool():
    assert _pool_peak(None) >= 32 * 2 ** 20  # the default: TensorFlow's pool (the faster one)
    assert _pool_peak("1") == 0
    from tuning.runtime import return_freed_memory

    assert return_freed_memory() is (os.environ.get(SETTING) in ("1", "true"))
