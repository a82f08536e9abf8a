"""Where tensor memory goes: malloc, given back between trials (the default), or TF's pool."""

import platform

import pytest
from conftest import run_python

SETTING = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
PROBE = """
import tuning
import tensorflow as tf
from tuning.host.runtime import release_memory

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

_ = tf.random.normal([8]) * 2.0
del _
tf.zeros([4 * 2 ** 20]) + 1.0  # a 16 MB block, freed: glibc then keeps such blocks in its heap
before = rss_mb()
blocks = [tf.fill([2 ** 21], float(i)) for i in range(40)]  # 40 x 8 MB, a trial's tensors
del blocks[:-1]  # all but the last, which keeps the heap's top in use
held = rss_mb()
released = release_memory()
print(tf.config.experimental.get_memory_info("CPU:0")["peak"], before, held, rss_mb(), released)
"""


def _probe(setting: str | None) -> tuple[int, float, float, float, str]:
    """(TensorFlow pool's peak bytes, RSS MB before / after freeing / after release, released)."""
    env = {} if setting is None else {SETTING: setting}
    line = run_python(PROBE, without=(SETTING,), **env)
    peak, before, held, after, released = line.split()
    return int(peak), float(before), float(held), float(after), released


needs_glibc_x86 = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or platform.libc_ver()[0] != "glibc",
    reason="TensorFlow's oneDNN pool is the x86 default; malloc_trim is glibc's",
)


@needs_glibc_x86
@pytest.mark.slow
def test_by_default_tensors_come_from_malloc_and_a_release_gives_them_back():
    peak, before, held, after, released = _probe(None)  # `import tuning` chose malloc
    assert peak == 0  # nothing in TensorFlow's never-shrinking pool
    assert held - before >= 200  # glibc keeps freed blocks in its heap ...
    assert released == "True" and after - before < 50  # ... until the release between trials


@needs_glibc_x86
@pytest.mark.slow
def test_a_user_s_setting_of_0_keeps_tensors_in_tensorflow_s_pool():
    peak, before, held, after, released = _probe("0")
    assert peak >= 256 * 2**20  # TensorFlow's pool (faster for fine-tuning) holds them
    assert released == "False" and after - before >= 200  # and keeps their memory
