import subprocess
import sys


def test_every_command_first_keeps_freed_memory_before_torch_loads(tmp_path):
    # glibc's thresholds take best before torch allocates (glnet_geo.allocator)
    code = ("import sys; from click.testing import CliRunner; import glnet_geo.allocator as a; "
            "calls = []; a.keep_freed_memory = lambda: calls.append('torch' in sys.modules); "
            "from glnet_geo.cli import main; "
            f"CliRunner().invoke(main, ['info', {str(tmp_path / 'missing.tif')!r}]); "
            "print(calls)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[False]", out.stderr
