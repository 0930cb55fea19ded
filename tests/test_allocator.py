import os
import platform
import subprocess
import sys
import textwrap

import pytest

from glnet_geo import allocator

on_glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                              reason="glibc's allocator only")

#: Three 24 MiB blocks allocated, written and freed, ten times after a first
#: time; prints the page faults of the ten.
ROUNDS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from glnet_geo.allocator import keep_freed_memory
    if sys.argv[1] == "kept":
        assert keep_freed_memory()
    def blocks():
        return [np.ones(3 * 2**20) for _ in range(3)]  # 24 MiB of float64 each
    blocks()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        blocks()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _page_faults(setting: str) -> int:
    # without the MALLOC_ variables a local Dask cluster leaves in this process's environment
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", ROUNDS, setting], capture_output=True,
                          text=True, check=True, env=environ)
    return int(done.stdout)


@on_glibc
def test_freed_blocks_are_reused_without_new_page_faults():
    default, kept = _page_faults("default"), _page_faults("kept")
    assert default > 1000  # glibc's own thresholds map or trim the blocks again each time
    assert kept < default / 10


class FakeLibc:
    def __init__(self, result: int = 1) -> None:
        self.calls = []
        self.result = result

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return self.result


@pytest.fixture
def fake_libc(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(allocator.platform, "system", lambda: "Linux")
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    allocator.keep_freed_memory.cache_clear()
    yield libc
    allocator.keep_freed_memory.cache_clear()


def test_fixes_the_mmap_then_the_trim_threshold_once(fake_libc):
    assert allocator.keep_freed_memory()
    assert allocator.keep_freed_memory()
    assert fake_libc.calls == [(-3, 32 * 2**20), (-1, 128 * 2**20)]


def test_reports_a_refused_setting(fake_libc):
    fake_libc.result = 0
    assert not allocator.keep_freed_memory()


@pytest.mark.parametrize("system, libc", [("Linux", ("musl", "")), ("Darwin", ("", "")),
                                          ("Windows", ("", ""))])
def test_changes_nothing_off_glibc(fake_libc, monkeypatch, system, libc):
    monkeypatch.setattr(allocator.platform, "system", lambda: system)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: libc)
    assert not allocator.keep_freed_memory()
    assert fake_libc.calls == []
