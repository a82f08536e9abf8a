"""oneDNN on wherever TensorFlow would leave it off, unless the user chose; the CPU recorded."""

import json
import platform
import sys

import pytest
from conftest import run_python

REPORT = (
    "import json, tuning, tensorflow\n"
    "from tuning.host.cpu import onednn_line, onednn_on\n"
    "print(json.dumps({'on': onednn_on(), 'line': onednn_line(),\n"
    "                  'setting': __import__('os').environ.get('TF_ENABLE_ONEDNN_OPTS')}))"
)

needs_linux_x86 = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
    reason="TensorFlow's oneDNN kernels are chosen this way on Linux x86_64 only",
)


def _fresh_process(code: str, **env) -> dict:
    """`code` in a fresh interpreter whose environment lacks TF_ENABLE_ONEDNN_OPTS unless given."""
    return json.loads(
        run_python(code, without=("TF_ENABLE_ONEDNN_OPTS", "CIFAR_TUNE_SET_ONEDNN"), **env)
    )


@needs_linux_x86
def test_import_tuning_turns_onednn_on_as_tensorflow_reports_it():
    # asked again once TensorFlow is loaded (as a benchmark's main may), the reason stays ours
    again = "from tuning.host.cpu import prefer_onednn\nimport tensorflow\nprefer_onednn()\n"
    result = _fresh_process(again + REPORT)
    assert result["on"] is True
    assert result["line"].startswith("oneDNN on (")
    from tuning.host.cpu import tensorflow_enables_onednn

    if not tensorflow_enables_onednn():  # an AVX2-class host: we turned it on
        assert "enabled by cifar-tune" in result["line"] and result["setting"] == "1"


@needs_linux_x86
def test_a_users_onednn_setting_is_kept():
    result = _fresh_process(REPORT, TF_ENABLE_ONEDNN_OPTS="0")
    assert result == {
        "on": False,
        "setting": "0",
        "line": "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0 set by you)",
    }
    # even in a child of a process in which cifar-tune turned oneDNN on
    result = _fresh_process(REPORT, TF_ENABLE_ONEDNN_OPTS="0", CIFAR_TUNE_SET_ONEDNN="1")
    assert result == {
        "on": False,
        "setting": "0",
        "line": "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0 set by you)",
    }


@needs_linux_x86
def test_tensorflow_imported_first_is_reported_not_hidden():
    code = "import tensorflow\n" + REPORT
    result = _fresh_process(code)
    from tuning.host.cpu import tensorflow_enables_onednn

    if tensorflow_enables_onednn():
        pytest.skip("this CPU gets oneDNN from TensorFlow itself; nothing comes too late")
    assert result["on"] is False and "imported before cifar-tune" in result["line"]


def test_machine_facts_name_the_cpu_features_that_decide_onednn():
    from tuning.host.cpu import RECORDED_FEATURES, cpu_facts

    facts = cpu_facts()
    assert set(facts["cpu_features"]) == set(RECORDED_FEATURES)
    assert {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"} <= set(
        RECORDED_FEATURES
    )
    assert facts["cpu"] and facts["cores"] >= 1
    if sys.platform.startswith("linux"):
        flags = open("/proc/cpuinfo").read()
        assert facts["cpu_features"]["avx2"] == (" avx2 " in flags or " avx2\n" in flags)


@needs_linux_x86
def test_a_child_process_tells_our_setting_from_the_users():
    from tuning.host.cpu import tensorflow_enables_onednn

    if tensorflow_enables_onednn():
        pytest.skip("this CPU gets oneDNN from TensorFlow itself; cifar-tune sets nothing")
    result = _fresh_process(REPORT, TF_ENABLE_ONEDNN_OPTS="1", CIFAR_TUNE_SET_ONEDNN="1")
    assert result["on"] and "enabled by cifar-tune" in result["line"]


@needs_linux_x86
def test_a_child_whose_parent_dropped_the_setting_turns_onednn_on_again():
    # a benchmark's child starts without TF_ENABLE_ONEDNN_OPTS but may inherit our marker
    result = _fresh_process(REPORT, CIFAR_TUNE_SET_ONEDNN="1")
    assert result["on"] is True and result["line"].startswith("oneDNN on (")
