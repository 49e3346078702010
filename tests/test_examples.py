"""Every example script runs (with short settings) and exits 0."""

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # every example runs a real fit or long simulation

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("[0-9][0-9]_*.py"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = {**os.environ, "HHSYM_EXAMPLE_T_STOP": "40", "HHSYM_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
