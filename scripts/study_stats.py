#!/usr/bin/env python
"""Re-analyse saved `rdfer study` tables (study.csv) with rdfer's statistics.

    python scripts/study_stats.py --out docs/results/study.md \
        "guided detector=docs/results/study_earlier/guided_quick/study.csv" \
        "unguided detector=docs/results/study_earlier/study.csv,docs/results/study_earlier/symmetric_40_pair_30/study.csv,docs/results/study_earlier/rest_of_grid/symmetric_20/study.csv,docs/results/study_earlier/rest_of_grid/symmetric_40_pair_30/study.csv"

Each argument is NAME=CSV[,CSV...]: one table, from the rows of those files (a run that appears
twice, same noise, strategy and seed, keeps its first row). Per noise setting and strategy:
last-epoch WAR and memorisation as mean +- sample sd over seeds; against CE, the WAR difference
paired by seed (the runs of one seed share their data), its 95% t interval, the paired t-test p
and that p Holm-corrected over every comparison of the table. study.csv keeps no per-clip
predictions, so the pooled McNemar test of `rdfer study`'s own report cannot be recomputed here.
"""

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rdfer import stats  # noqa: E402

REFERENCE = "ce"


def read_rows(paths: list) -> list:
    rows, seen = [], set()
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                key = (row["noise"], row["strategy"], int(row["seed"]))
                if key in seen or not row.get("war"):
                    continue
                seen.add(key)
                rows.append({"noise": key[0], "strategy": key[1], "seed": key[2], "war": float(row["war"]),
                             "memorised": float(row["memorised"]) if row.get("memorised") else None})
    return rows


def analyse(rows: list) -> list:
    """One dict per (noise, strategy): the figures and, against CE, the paired comparison."""
    war, memorised = defaultdict(dict), defaultdict(dict)
    for row in rows:
        war[row["noise"], row["strategy"]][row["seed"]] = row["war"]
        if row["memorised"] is not None:
            memorised[row["noise"], row["strategy"]][row["seed"]] = row["memorised"]
    found = []
    for (noise, strategy), by_seed in sorted(war.items(), key=lambda kv: (kv[0][0], kv[0][1] != REFERENCE, kv[0][1])):
        item = {"noise": noise, "strategy": strategy, "seeds": len(by_seed), "war": stats.mean_sd(list(by_seed.values())),
                "memorised": (stats.mean_sd(list(memorised[noise, strategy].values()))
                              if memorised[noise, strategy] else None)}
        reference = war.get((noise, REFERENCE), {})
        paired_seeds = sorted(set(by_seed) & set(reference))
        if strategy != REFERENCE and len(paired_seeds) >= 2:
            diffs = [by_seed[s] - reference[s] for s in paired_seeds]
            tests = stats.paired_tests([reference[s] for s in paired_seeds], [by_seed[s] for s in paired_seeds])
            item.update(pairs=len(paired_seeds), diff=tests["mean_diff"], diff_ci=stats.mean_ci(diffs), t_p=tests["t_p"])
        found.append(item)
    tested = [item for item in found if "t_p" in item]
    for item, adjusted in zip(tested, stats.holm([item["t_p"] for item in tested])):
        item["holm_p"] = adjusted
        item["verdict"] = stats.verdict(item["diff"], adjusted, REFERENCE).words
    return found


def table(name: str, paths: list, found: list) -> str:
    tested = sum("holm_p" in item for item in found)
    lines = [f"## {name}", "", "From " + ", ".join(f"`{p}`" for p in paths) + ".", "",
             f"Holm correction over the {tested} comparisons of this table.", "",
             "| noise | strategy | seeds | WAR (mean ± sd) | memorised (%) | WAR − CE [95% CI] | paired t p | Holm p | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for item in found:
        mean, sd = item["war"]
        mem = "-" if item["memorised"] is None else f"{100 * item['memorised'][0]:.0f} ± {100 * item['memorised'][1]:.0f}"
        if "holm_p" in item:
            low, high = item["diff_ci"]
            compared = (f"{item['diff']:+.1f} [{low:+.1f}, {high:+.1f}] | {item['t_p']:.3f} | {item['holm_p']:.3f} | "
                        f"{item['verdict']}")
        else:
            compared = "(reference) | | |" if item["strategy"] == REFERENCE else "- | | | too few seeds paired with CE"
        lines.append(f"| {item['noise']} | {item['strategy']} | {item['seeds']} | {mean:.1f} ± {sd:.1f} | {mem} | {compared} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", metavar="NAME=CSV[,CSV...]", help="one table from these study.csv files")
    parser.add_argument("--out", required=True, help="the Markdown file to write")
    args = parser.parse_args(argv)
    parts = ["# The robustness study, re-analysed", "",
             "Generated by `python scripts/study_stats.py --out " + args.out + " " +
             " ".join(f'"{t}"' for t in args.tables) + "`.", "",
             "Last-epoch test WAR of `rdfer study` runs (synthetic DFEW-hard, 800 training clips with flipped "
             "labels, 200 clean test clips shared by every run of a setting), mean ± sample sd over seeds; "
             "memorised: flipped training clips predicted as their wrong label. Against CE: the per-seed WAR "
             "difference (strategy minus CE), its 95% t interval over seeds, the paired t-test and its "
             "Holm-corrected p. With 3 seeds an interval is wide: \"no detectable difference\" is not \"equal\".", ""]
    for spec in args.tables:
        name, _, files = spec.partition("=")
        paths = [p for p in files.split(",") if p]
        parts.append(table(name, paths, analyse(read_rows(paths))))
    Path(args.out).write_text("\n".join(parts))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
