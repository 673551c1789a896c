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


def test_main_job_runs_the_maze_pipeline_and_reports_a_table(tmp_path: Path) -> None:
    main_job = next(cmd for cmd in readme_commands() if "sb3_lsp.demo" in cmd)
    assert main_job.endswith("python -m sb3_lsp.demo")
    # From another directory: the demo's settings ship with the package.
    result = subprocess.run(
        [sys.executable, "-m", "sb3_lsp.demo", "--scale", "0.05", "--eval-episodes", "2", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for method in ("hierarchy (2 levels)", "flat SAC + LSPPolicy"):
        row = re.search(
            rf"\| {re.escape(method)} \| (\d+) \| (\d+) \| ([01]\.\d\d) \| (\d+\.\d\d) ± \d+\.\d\d \|", result.stdout
        )
        assert row, result.stdout[-3000:]
        assert 0 < float(row.group(4)) < 30  # a distance inside the maze
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    assert (tmp_path / "results.csv").read_text().count("\n") == 3
    assert (tmp_path / "hierarchy" / "hierarchy.zip").is_file()
    assert list((tmp_path / "flat" / "sac").glob("sb3_lsp-PointCrossMaze-v0_1/sb3_lsp-PointCrossMaze-v0.zip"))
