"""
Carry benchmark records over the change of LSPPolicy's default flow (paper text -> Gaussian start).

    python -m benchmarks.pin_flow_records benchmarks/configs/sac_mujoco.yml \
        --renamed "SAC LSPPolicy=SAC LSPPolicy (paper text)"

Before the change, a config's LSPPolicy runs that set no ``flow`` got the paper's flow from the
library's defaults, which a run's spec (and so its digest) does not capture. The configs now pin
``flow: paper_text`` in those runs' ``policy_kwargs``, and a method named for the default
("SAC LSPPolicy") is renamed for the settings it ran ("SAC LSPPolicy (paper text)"), so the name
"SAC LSPPolicy" is free for the new defaults. Both change the spec digest, which would drop the
recorded runs (``benchmarks.aggregate``). This script rewrites ``results/<name>/runs.csv`` and
``aggregate.csv`` for them, and re-renders the config's section of the results file.

A recorded run is carried over only when its digest is the digest of the spec it had before: the
current spec with the ``flow: paper_text`` pin removed and the method's old name. Any other change
of the spec since it was recorded leaves that run as it is (and ``benchmarks.aggregate`` drops it).
"""

import argparse
import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.aggregate import KEY, expected_runs, read_record, write_results
from benchmarks.grid import load_config, slug, spec_digest

#: The value the configs pin where they used to get the library's default flow.
PINNED_FLOW = "paper_text"


def spec_before_pin(spec: dict[str, Any], old_name: str | None) -> dict[str, Any]:
    """The spec a run had before the pin: without ``flow: paper_text``, under its old method name if renamed."""
    old = copy.deepcopy(spec)
    policy_kwargs = old["hyperparams"].get("policy_kwargs", {})
    if policy_kwargs.get("flow") == PINNED_FLOW:
        del policy_kwargs["flow"]
    if old_name is not None:
        old["label"] = old["label"].replace(spec["method"], old_name, 1)
        old["method"] = old_name
    return old


def convert(config_path: Path, renamed: dict[str, str], results: Path) -> int:
    """
    :param config_path: The benchmark config, already pinned (and renamed).
    :param renamed: Old method name -> new method name.
    :param results: The results file whose section is re-rendered.
    :return: The number of recorded runs carried over.
    """
    config = load_config(config_path)
    record = results.parent / "results" / slug(config["name"])
    if not (record / "runs.csv").is_file():
        # No record, or one from before runs.csv: no digests to check, so nothing is carried over.
        print(f"{config['name']}: no runs.csv in {record}, nothing carried over")
        return 0
    runs = read_record(record / "runs.csv")
    evaluations = read_record(record / "aggregate.csv")
    new_name = {old: new for old, new in renamed.items()}
    specs = expected_runs(config)
    carried = 0
    for index, (kind, name, env, seed) in enumerate(runs[KEY].itertuples(index=False, name=None)):
        current = (kind, new_name.get(name, name) if kind == "grid" else name, env, int(seed))
        if current not in specs:
            continue
        spec = specs[current][1]
        before = spec_before_pin(spec, name if current[1] != name else None)
        if runs.at[index, "spec_digest"] != spec_digest(before):
            continue
        runs.at[index, "name"] = current[1]
        runs.at[index, "spec_digest"] = spec_digest(spec)
        if kind == "grid":
            evaluations.loc[
                (evaluations["method"] == name) & (evaluations["env"] == env) & (evaluations["seed"] == seed), "method"
            ] = current[1]
        carried += 1
    runs.to_csv(record / "runs.csv", index=False)
    evaluations.to_csv(record / "aggregate.csv", index=False)
    with tempfile.TemporaryDirectory() as output:  # an output folder with no runs: everything comes from the record
        (Path(output) / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        write_results(Path(output), results)
    print(f"{config['name']}: {carried} of {len(runs)} recorded runs carried over")
    return carried


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pin_flow_records", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("configs", type=Path, nargs="+", help="benchmark configs whose records to carry over")
    parser.add_argument("--renamed", action="append", default=[], metavar="OLD=NEW", help="a method renamed by the pin")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/RESULTS.md"), help="markdown file to update")
    args = parser.parse_args(argv)
    renamed = dict(pair.split("=", 1) for pair in args.renamed)
    for config in args.configs:
        convert(config, renamed, args.results)


if __name__ == "__main__":
    main()
