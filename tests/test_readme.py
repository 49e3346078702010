"""README.md is a user's guide that runs: its Python snippets and its command-line tour are executed.

* every ```python block of the README runs, in order, in one namespace, in an empty folder;
* the ```bash block of the "Command line" section runs line by line, in order, in an empty
  folder, each line through :func:`hhsym.cli.main` (exactly as written, split by :mod:`shlex`;
  a trailing ``# comment`` is dropped), and each must exit 0;
* the set-up commands are present, exactly, but not run (they install);
* the README stays a guide: at most 200 lines, the architecture in at most 20, and every
  ``hhsym/...`` path the architecture names exists.
"""

import contextlib
import os
import pathlib
import re
import shlex
import sys
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

SETUP_COMMANDS = ('pip install -e . && hhsym demo', 'pip install -e ".[test]" && python -m pytest')


def _text():
    return README.read_text(encoding="utf-8")


def _blocks(text, language):
    """Fenced code blocks of one language: list of (heading of their section, code)."""
    blocks, heading = [], None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            heading = line[3:].strip()
        if line.strip() == f"```{language}":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            blocks.append((heading, "\n".join(lines[i + 1:j]) + "\n"))
            i = j
        i += 1
    return blocks


def _section(text, title):
    """The lines of the section headed ``## <title>...`` up to the next ``## `` heading."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line[3:].startswith(title)
            continue
        if inside:
            out.append(line)
    return out


def _tour():
    blocks = [code for heading, code in _blocks(_text(), "bash") if heading.startswith("Command line")]
    assert len(blocks) == 1, "the Command line section should hold one ```bash block (the tour)"
    lines = []
    for raw in blocks[0].splitlines():
        line = raw.split(" #")[0].strip()
        if line:
            lines.append(line)
    return lines


@contextlib.contextmanager
def _inside(folder):
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


# --- cheap checks of the guide's shape ------------------------------------------------------------

def test_readme_is_a_short_guide():
    text = _text()
    assert len(text.splitlines()) <= 200
    for section in ("Set-up", "Which route", "Quickstart", "Command line", "Results", "Limitations",
                    "Architecture"):
        assert any(line.startswith("## " + section) for line in text.splitlines()), section
    assert "benchmarks/README.md" in text


def test_setup_commands_are_present_exactly_and_are_not_run():
    setup = [code.strip() for heading, code in _blocks(_text(), "bash") if heading.startswith("Set-up")]
    assert tuple(setup) == SETUP_COMMANDS
    assert not any(line.startswith("pip ") for line in _tour())


def test_architecture_is_at_most_20_lines_and_names_existing_paths():
    lines = [line for line in _section(_text(), "Architecture") if line.strip()]
    assert 0 < len(lines) <= 20
    named = set()
    for line in lines:
        for path in re.findall(r"hhsym/[\w/.]+", line):
            named.add(path.rstrip("/."))
    assert named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"the README's architecture names paths that do not exist: {missing}"


def test_tour_lines_are_hhsym_commands():
    tour = _tour()
    assert tour and all(line.split()[0] == "hhsym" for line in tour), tour
    # the tour makes the files it uses
    assert tour[0].startswith("hhsym simulate")


def test_python_snippets_exist_and_compile():
    blocks = [code for heading, code in _blocks(_text(), "python")]
    assert len(blocks) >= 3
    for k, code in enumerate(blocks):
        compile(code, f"README.md python block {k + 1}", "exec")


# --- the guide runs -------------------------------------------------------------------------------

@pytest.mark.slow
def test_python_snippets_run_in_order(tmp_path, capsys):
    namespace = {"__name__": "__readme__"}
    with _inside(tmp_path), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short fit may warn; the snippets show its verdict
        for k, (heading, code) in enumerate(_blocks(_text(), "python")):
            exec(compile(code, f"README.md python block {k + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "alpha_m" in out  # the summaries were printed
    for name in ("cell.csv", "fit.npz", "model.json", "forms.json"):
        assert (tmp_path / name).is_file(), name
    import hhsym

    est = namespace["est"]
    back = hhsym.load(tmp_path / "fit.npz")
    V = [-60.0, -20.0]
    assert all((back.predict_rates(V)[r] == est.predict_rates(V)[r]).all() for r in est.predict_rates(V))
    assert hhsym.load_model(tmp_path / "forms.json") == namespace["forms"].model_


@pytest.mark.slow
def test_cli_tour_runs_in_sequence(tmp_path):
    from hhsym.cli import main

    with _inside(tmp_path), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for line in _tour():
            code = main(shlex.split(line)[1:])
            assert code == 0, f"README tour: `{line}` exited {code}"
    for name in ("cell_0.csv", "cell_1.csv", "test.csv", "fit.npz", "model.json", "model.tex", "forms.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "report").is_dir()


if __name__ == "__main__":  # python tests/test_readme.py: run the guide's checks
    sys.exit(pytest.main([__file__, "-q"]))
