"""`kerascnn-train` warns about the settings measured to slow training on a CPU: XLA
(`--jit-compile`), and bfloat16 on a CPU that has no bfloat16 instructions."""

import pytest

from kerascnn import application
from kerascnn.training.config import TrainConfig


@pytest.fixture
def machine(monkeypatch):
    """Pretend the devices and CPU flags are the given ones."""

    def pretend(devices, flags):
        monkeypatch.setattr(application.keras.distribution, "list_devices", lambda: devices)
        monkeypatch.setattr(application, "cpu_flags", lambda: flags)

    return pretend


ZEN3 = frozenset({"avx2", "fma"})
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"})


def test_jit_compile_on_a_cpu_warns_and_on_a_gpu_does_not(machine):
    machine(["cpu:0"], ZEN3)
    (warning,) = application.speed_warnings(TrainConfig(jit_compile=True))
    assert warning.startswith("--jit-compile on a CPU")
    machine(["cpu:0", "gpu:0"], ZEN3)
    assert application.speed_warnings(TrainConfig(jit_compile=True)) == []


@pytest.mark.parametrize(
    "flags, warned",
    [(ZEN3, True), (SAPPHIRE_RAPIDS, False), (None, False)],
    ids=["no-bf16-instructions", "avx512-bf16", "flags-unknown"],
)
def test_bfloat16_warns_only_on_a_cpu_without_bfloat16_instructions(machine, flags, warned):
    machine(["cpu:0"], flags)
    found = application.speed_warnings(TrainConfig(mixed_precision="bfloat16"))
    assert (found != []) == warned
    if warned:
        assert "without bfloat16 instructions" in found[0] and "\n" not in found[0]
    assert application.speed_warnings(TrainConfig(mixed_precision="float16")) == []
    assert application.speed_warnings(TrainConfig()) == []


def test_this_machines_cpu_flags_are_read_where_linux_lists_them():
    flags = application.cpu_flags()
    assert flags is None or (isinstance(flags, frozenset) and flags)
