import os
import subprocess
import sys

import pytest

from glnet_geo.io.staging import Staging, remove_stale

pytestmark = pytest.mark.skipif(os.name == "nt", reason="no flock on Windows")


def test_a_staging_removes_its_paths_and_its_lock(tmp_path):
    final = tmp_path / "classes.tif"
    with Staging(final) as staging:
        staging.path(".partial.tif").write_bytes(b"x")
        (staging.path(".tmp")).mkdir()
        assert len(list(tmp_path.iterdir())) == 3  # the two and the lock
    assert list(tmp_path.iterdir()) == []


def test_only_the_temporaries_of_ended_runs_are_stale(tmp_path):
    final = tmp_path / "classes.tif"
    live = Staging(final)
    live.path(".partial.tif").write_bytes(b"still writing")
    killed = subprocess.run(  # a run killed while writing: its lock is released, its files stay
        [sys.executable, "-c", "import os, sys; from glnet_geo.io.staging import Staging; "
         f"s = Staging({str(final)!r}); s.path('.partial.tif').write_bytes(b'x'); "
         "os._exit(9)"], check=False)
    assert killed.returncode == 9
    (tmp_path / ".classes.tif.0123abcd.cog.tif").write_bytes(b"no lock at all")
    (tmp_path / ".other.tif.0123abcd.cog.tif").write_bytes(b"another output's")
    removed = remove_stale(final)
    assert len(removed) == 3  # the killed run's file and lock, the lockless one
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".classes.tif.{live.token}.lock", f".classes.tif.{live.token}.partial.tif",
         ".other.tif.0123abcd.cog.tif"])
    live.close()
