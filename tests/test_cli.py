"""The first minutes of a new user: every command's --help, and README's commands as written.

Each entry point's --help runs in a fresh process, which must exit 0 without importing
TensorFlow (what makes it answer at once; the time itself is measured in the report of issue
15, not asserted here). README's fenced commands are checked against those help texts: each
command names a program that exists and flags that it defines, and each command that reads a
dataset names its data, so that it runs offline from the repository root as written.
"""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# setup.py's console scripts.
ENTRY_POINTS = ("mkr_tf.train", "mkr_tf.baselines", "mkr_tf.evaluate", "mkr_tf.export", "mkr_tf.recommend",
                "mkr_tf.reproduce", "mkr_tf.tune", "mkr_tf.plot", "mkr_tf.generate_data",
                "data_prep")
IMPORTS_TENSORFLOW = ()
# Runs `module` as `python -m module --help` does, then reports whether TensorFlow was imported.
_HELP_PROBE = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exit_:
    code = exit_.code
print("TENSORFLOW IMPORTED" if "tensorflow" in sys.modules else "tensorflow not imported",
      file=sys.stderr)
sys.exit(code)
"""
# Programs that read a dataset, and how each one runs on the embedded synthetic data.
_READS_DATA = {
    "mkr_tf.train": lambda flags: flags.get("dataset", "synthetic") == "synthetic",
    "mkr_tf.reproduce": lambda flags: "quick" in flags,
    "mkr_tf.baselines": lambda flags: flags.get("dataset", "synthetic") == "synthetic",
    "mkr_tf.tune": lambda flags: flags.get("dataset", "synthetic") == "synthetic",
    "data_prep": lambda flags: "nodownload" in flags,  # fails offline with placement advice
    "benchmarks/train_speed.py": lambda flags: False,
    "benchmarks/paper_table.py": lambda flags: False,
    "benchmarks/topk_speed.py": lambda flags: False,
    "benchmarks/serving_speed.py": lambda flags: False,
}


@pytest.fixture(scope="module")
def help_texts() -> dict[str, subprocess.CompletedProcess]:
    processes = {module: subprocess.Popen(
        [sys.executable, "-c", _HELP_PROBE, module], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for module in ENTRY_POINTS}
    results = {}
    for module, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        results[module] = subprocess.CompletedProcess(process.args, process.returncode,
                                                      stdout, stderr)
    return results


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_exits_0_without_tensorflow(help_texts, module):
    result = help_texts[module]
    assert result.returncode == 0, result.stderr
    expected = "TENSORFLOW IMPORTED" if module in IMPORTS_TENSORFLOW else "tensorflow not imported"
    assert result.stderr.strip().splitlines()[-1] == expected
    assert "Flags:" in result.stdout and "--" in result.stdout.partition("Flags:")[2]


@pytest.mark.parametrize("flag", ["--lr_schedule=linear", "--dim=abc", "--no_such_flag=1"])
def test_a_bad_flag_is_one_line_and_exit_code_2(flag):
    result = subprocess.run([sys.executable, "-m", "mkr_tf.train", flag, "--noexport"], cwd=REPO,
                            text=True, capture_output=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("mkr_tf.train: error: ") and flag.split("=")[0].lstrip("-") in line, line


def test_generate_data_help_lists_the_generator_flags(help_texts):
    for flag in ("--output_dir", "--users", "--interactions"):
        assert flag in help_texts["mkr_tf.generate_data"].stdout


def test_train_help_shows_presets_and_explains_the_negative_kge_loss(help_texts):
    text = help_texts["mkr_tf.train"].stdout
    assert "music 256" in text and "book 32" in text  # --batch_size's presets
    assert "kge_loss is negative" in text


def readme_commands(text: str) -> list[tuple[str, str]]:
    """(command, the comments on it and just above it) of every command of this project (mkr_tf,
    data_prep, benchmarks) in a fenced block; lines continued with a backslash or inside a
    quote are joined."""
    commands = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        comments, pending = [], ""
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("#"):
                comments.append(line)
                continue
            pending = f"{pending} {line}" if pending else line
            if pending.count("'") % 2:
                continue  # a quoted TF_CONFIG goes on
            command, _, comment = pending.partition("  #")
            if re.search(r"\bpython3? (-m (mkr_tf|data_prep)|benchmarks/)", command):
                commands.append((command.strip(), " ".join(comments + [comment])))
            comments, pending = [], ""
    return commands


def program_and_flags(command: str) -> tuple[str, dict[str, str]]:
    """The program of a `python -m X ...` or `python benchmarks/x.py ...` command, its flags."""
    words = shlex.split(command.replace("[", " ").replace("]", " "))
    start = next(i for i, word in enumerate(words) if re.fullmatch(r"python3?", word))
    program = words[start + 2] if words[start + 1] == "-m" else words[start + 1]
    flags = {}
    for word in words[start + 2:]:
        match = re.fullmatch(r"--(\w+)(?:=(.*))?", word)
        if match:
            flags[match.group(1)] = match.group(2)
    return program, flags


def names_its_data(command: str, comment: str) -> bool:
    program, flags = program_and_flags(command)
    if program not in _READS_DATA:
        return True
    if re.search(r"\bMKR_DATA_DIR=", command) or {"data_dir", "recbole_path"} & set(flags):
        return True
    # Downloading is allowed where the example says so.
    return _READS_DATA[program](flags) or "download" in comment.lower()


@pytest.mark.parametrize("command, expected", [
    ("python -m mkr_tf.train", True),
    ("python -m mkr_tf.train --dataset=music --run_dir=runs/m1 --patience=3", False),
    ("MKR_DATA_DIR=../shared/datasets python -m mkr_tf.train --dataset=music", True),
    ("python -m mkr_tf.reproduce --datasets=book", False),
    ("python -m mkr_tf.reproduce --quick", True),
    ("python -m data_prep --dataset=music --data_dir=../shared/datasets", True),
    ("python benchmarks/topk_speed.py", False),
    ("python -m mkr_tf.evaluate --run_dir=runs/music1", True),
])
def test_the_data_check_itself(command, expected):
    assert names_its_data(command, "") == expected


README_COMMANDS = readme_commands((REPO / "README.md").read_text())


def test_readme_has_commands():
    assert len(README_COMMANDS) > 30


@pytest.mark.parametrize("command, comment", README_COMMANDS)
def test_readme_command_names_its_data_and_known_flags(help_texts, command, comment):
    assert names_its_data(command, comment), (
        f"{command!r} reads a dataset but names none: add MKR_DATA_DIR=../shared/datasets "
        f"(or --data_dir), or say that it downloads")
    program, flags = program_and_flags(command)
    if program.startswith("benchmarks/"):
        assert (REPO / program).is_file(), program
        return
    assert program in help_texts, f"{program}: not an entry point"
    listed = help_texts[program].stdout
    for flag in flags:
        plain = flag[2:] if flag.startswith("no") and f"--[no]{flag[2:]}:" in listed else flag
        assert f"--{plain}:" in listed or f"--[no]{plain}:" in listed, (
            f"{command!r}: {program} has no flag --{flag}")


def test_xla_cache_joins_tf_xla_flags_and_keeps_a_users_own(monkeypatch):
    from mkr_tf import cli  # pylint: disable=import-outside-toplevel
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    cli.keep_xla_compilations("/cache/xla")
    assert os.environ["TF_XLA_FLAGS"] == (
        "--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory=/cache/xla")
    cli.keep_xla_compilations("/elsewhere")  # the folder already set stays
    assert os.environ["TF_XLA_FLAGS"].count("persistent_cache_directory") == 1
    monkeypatch.delenv("TF_XLA_FLAGS")
    cli.keep_xla_compilations("/my cache/xla")  # whitespace cannot pass through TF_XLA_FLAGS
    assert "TF_XLA_FLAGS" not in os.environ
