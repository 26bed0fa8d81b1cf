"""p3d.device: which machines multiply bfloat16 natively (the ``full`` preset's stage-1 precision depends on it)."""
from __future__ import annotations

import pytest
import torch

from p3d.device import native_bf16


@pytest.mark.parametrize(("avx512_bf16", "amx", "expected"), [(False, False, False), (True, False, True),
                                                               (False, True, True), (True, True, True)])
def test_a_cpu_multiplies_bf16_natively_with_avx512_bf16_or_amx(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert native_bf16("cpu") is expected
    assert native_bf16(torch.device("cpu")) is expected


def test_a_torch_without_the_cpu_queries_reports_no_native_bf16(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert native_bf16("cpu") is False


def test_other_devices(monkeypatch):
    assert native_bf16("meta") is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bf16("cuda") is False


@pytest.mark.parametrize("native", [False, True])
def test_bf16_asked_for_on_a_cpu_without_it_is_warned_in_one_line(monkeypatch, caplog, native):
    from p3d.device import warn_unless_native_bf16

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    with caplog.at_level("WARNING", logger="p3d.device"):
        warned = warn_unless_native_bf16("cpu", "--bf16")
    assert warned is (not native)
    lines = [r.getMessage() for r in caplog.records if r.name == "p3d.device"]
    if native:
        assert lines == []
    else:
        assert len(lines) == 1 and "\n" not in lines[0]
        assert "--bf16" in lines[0] and "slower than float32" in lines[0]


def test_a_cuda_gpu_that_only_emulates_bf16_is_not_native(monkeypatch):
    """``torch.cuda.is_bf16_supported()`` is True on a pre-Ampere GPU (V100, T4: bf16 emulated, no bf16 tensor
    cores) and looks at the current GPU whatever ``cuda:N`` was asked about: native_bf16 said True for both.
    A fake two-GPU machine (compute capability 7.0 current, 8.0 second), independent of the machine the tests run on."""
    from types import SimpleNamespace

    majors = {0: 7, 1: 8}
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(major=majors[int(i)]))
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True, raising=False)
    assert native_bf16("cuda") is False and native_bf16("cuda:0") is False
    assert native_bf16("cuda:1") is True
    assert native_bf16("cuda:2") is False  # no such GPU
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert native_bf16("cuda") is True


@pytest.mark.parametrize(("rank", "expected"), [("0", "cuda:0"), ("1", "cuda:1"), ("2", None), ("x", None)])
def test_auto_checks_the_local_rank_against_the_gpus(monkeypatch, rank, expected):
    """``--device auto`` took ``cuda:LOCAL_RANK`` unchecked: a rank beyond the GPU count (torchrun with more
    processes per node than GPUs) passed, to fail later with a CUDA traceback when the model moved there; a rank
    that is not a number was a ValueError traceback. A fake two-GPU machine, independent of the test machine."""
    from p3d.device import resolve_device
    from p3d.errors import InputError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", rank)
    if expected is None:
        with pytest.raises(InputError, match="--device auto: LOCAL_RANK"):
            resolve_device("auto")
    else:
        assert resolve_device("auto") == torch.device(expected)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")  # no GPU: the rank does not matter


def test_a_numpy_integer_thread_count_is_a_thread_count(monkeypatch):
    """``set_threads(np.int64(2))`` (a count computed with numpy) was refused as 'expected a thread count in
    1..1024, got np.int64(2)', though it is neither below 1 nor above the limit."""
    import numpy as np

    from p3d.device import set_threads
    from p3d.errors import InputError

    before = torch.get_num_threads()
    try:
        set_threads(np.int64(2))
        assert torch.get_num_threads() == 2
        for bad in (np.int64(0), 2.0, True):
            with pytest.raises(InputError, match="--threads"):
                set_threads(bad)
    finally:
        torch.set_num_threads(before)


def _two_gpus(monkeypatch, available=True):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2 if available else 0)


def test_an_explicit_device_is_checked_against_this_machine(monkeypatch):
    """``cpu``, ``cuda`` or ``cuda:N`` (N below the GPU count) pass; another device type, CUDA on a machine without a
    GPU and ``cuda:N`` beyond the GPU count are one-line InputErrors naming ``--device`` (a fake two-GPU machine)."""
    from p3d.device import resolve_device
    from p3d.errors import InputError

    _two_gpus(monkeypatch)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    for bad, why in (("cuda:2", "has 2 CUDA GPU"), ("meta", "cpu or cuda"), ("mps", "cpu or cuda")):
        with pytest.raises(InputError, match=f"--device {bad}: .*{why}") as info:
            resolve_device(bad)
        assert "\n" not in str(info.value)
    _two_gpus(monkeypatch, available=False)
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("cuda", "cuda:0"):
        with pytest.raises(InputError, match=f"--device {bad}: no CUDA GPU"):
            resolve_device(bad)


def test_without_the_availability_check_only_the_name_is_read(monkeypatch):
    """``available=False``: the device a name stands for, whether or not this machine has it (an unknown name is
    still an InputError)."""
    from p3d.device import resolve_device
    from p3d.errors import InputError

    _two_gpus(monkeypatch, available=False)
    for name in ("cuda", "cuda:5", "meta"):
        assert resolve_device(name, available=False) == torch.device(name)
    with pytest.raises(InputError, match="--device"):
        resolve_device("no-such-device", available=False)


def test_any_rocm_gpu_multiplies_bf16_natively(monkeypatch):
    """ROCm GPUs count as native whatever their reported compute capability (the docstring's rule)."""
    from types import SimpleNamespace

    _two_gpus(monkeypatch)
    monkeypatch.setattr(torch.version, "hip", "6.0")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(major=1))
    assert native_bf16("cuda") is True and native_bf16("cuda:1") is True


def test_the_thread_count_limit_is_inclusive(monkeypatch):
    """``--threads`` accepts 1 to ``max(MAX_THREADS, CPU count)`` inclusive; 0 and the limit + 1 are refused.
    torch.set_num_threads is replaced so that no thread pool is started."""
    import os

    import p3d.device as device
    from p3d.errors import InputError

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    limit = max(device.MAX_THREADS, os.cpu_count() or 1)
    device.set_threads(1)
    device.set_threads(limit)
    assert calls == [1, limit]
    for bad in (0, limit + 1, -1, False):
        with pytest.raises(InputError, match="--threads"):
            device.set_threads(bad)
    assert calls == [1, limit]


def test_an_ampere_gpu_0_is_native(monkeypatch):
    """Compute capability 8.0 or later is native on any GPU index, GPU 0 included (a fake two-GPU machine: an
    A100 as GPU 0, a V100 as GPU 1)."""
    from types import SimpleNamespace

    _two_gpus(monkeypatch)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(major=(8, 7)[int(i)]))
    assert native_bf16("cuda:0") is True and native_bf16("cuda") is True and native_bf16("cuda:1") is False
