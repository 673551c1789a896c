"""The README's commands, run as a user runs them."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.startswith("python3 -m venv")]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = next(cmd for cmd in readme_commands() if cmd.endswith("&& pytest"))
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_main_job_trains_saves_and_reports_a_return(tmp_path: Path) -> None:
    main_job = next(cmd for cmd in readme_commands() if "sb3_lsp.demo" in cmd)
    assert main_job.endswith("python -m sb3_lsp.demo")
    result = subprocess.run(
        [sys.executable, "-m", "sb3_lsp.demo", "--steps", "300", "--eval-episodes", "2", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"deterministic evaluation return (-?\d+\.\d) \+/- (\d+\.\d) over 2 episodes", result.stdout)
    assert match, result.stdout
    assert -2000 < float(match.group(1)) <= 0  # Pendulum's return range over 200 steps
    assert (tmp_path / "sac_lsp_Pendulum-v1.zip").is_file()
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
