#!/usr/bin/python3
"""Compare rangeguard inject reports with scripts/torch_inject.py replays of the same faults.

    /usr/bin/python3 scripts/inject_compare.py --rangeguard R1.json R2.json ... \
        --torch T1.json T2.json ... [--json SUMMARY.json]

R*.json: `rangeguard inject --json` reports (docs/inject.md); T*.json: the one-line JSON
reports of torch_inject.py. Every round ran the identical fault list on the identical
inputs. Prints one table: each tool's rate per round and the median, the speed ratio
rangeguard / torch (medians), and both tools' SDC and DUE counts with their difference.

Outcomes are only counted per bucket, not per (fault, input) pair, so how many pairs the
two tools classified differently is bounded from below: within a bucket (a layer, or a
bit position) every pair that moved changes two of the counts masked/SDC/DUE by one, so
at least (|d masked| + |d SDC| + |d DUE|) / 2 pairs differ there. The larger of the
per-layer and per-bit sums is reported ("pairs differing >= N").
"""
import argparse
import json
import math
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def rg_counts(r):
    c = r["original"]["counts"]
    return {"pairs": c["pairs"], "sdc": c["sdc"], "due": c["due"]}


def rg_buckets(r, table):
    return {k: {"pairs": v["pairs"], "sdc": v["sdc"], "due": v["due"]}
            for k, v in r["original"][table].items()}


def differing_pairs_bound(a, b):
    """Lower bound on pairs classified differently, from two {bucket: {pairs, sdc, due}}."""
    total = 0
    for key in set(a) | set(b):
        x = a.get(key, {"pairs": 0, "sdc": 0, "due": 0})
        y = b.get(key, {"pairs": 0, "sdc": 0, "due": 0})
        if x["pairs"] != y["pairs"]:
            raise ValueError(f"bucket {key}: {x['pairs']} vs {y['pairs']} pairs: not the same faults")
        d_sdc, d_due = x["sdc"] - y["sdc"], x["due"] - y["due"]
        total += math.ceil((abs(d_sdc) + abs(d_due) + abs(d_sdc + d_due)) / 2)
    return total


def compare(rg_reports, torch_reports):
    """The summary of a side-by-side run (a dict; see main for the table)."""
    rg_sets = {json.dumps(rg_counts(r), sort_keys=True) for r in rg_reports}
    t_sets = {json.dumps({k: t[k] for k in ("pairs", "sdc", "due")}, sort_keys=True)
              for t in torch_reports}
    if len(rg_sets) != 1 or len(t_sets) != 1:
        raise ValueError(f"rounds of one tool disagree: rangeguard {rg_sets}, torch {t_sets}")
    rg, t = rg_reports[0], torch_reports[0]
    c = rg_counts(rg)
    if c["pairs"] != t["pairs"]:
        raise ValueError(f"rangeguard ran {c['pairs']} pairs, torch {t['pairs']}: not the same campaign")
    bound = max(differing_pairs_bound(rg_buckets(rg, "per_layer"), t["per_layer"]),
                differing_pairs_bound(rg_buckets(rg, "per_bit"), t["per_bit"]))
    rg_rates = [r["timing"]["campaign_inferences_per_s"] for r in rg_reports]
    t_rates = [x["inferences_per_s"] for x in torch_reports]
    return {
        "model": t["model"], "faults": rg["faults_total"], "samples": rg["settings"]["samples"],
        "threads": t["threads"], "pairs": c["pairs"],
        "rangeguard": {"rates": rg_rates, "median_rate": statistics.median(rg_rates),
                       "plain_rate": statistics.median(r["timing"]["plain_inferences_per_s"]
                                                       for r in rg_reports),
                       "sdc": c["sdc"], "due": c["due"]},
        "torch": {"rates": t_rates, "median_rate": statistics.median(t_rates),
                  "plain_rate": statistics.median(x["plain_inferences_per_s"] for x in torch_reports),
                  "sdc": t["sdc"], "due": t["due"],
                  "max_abs_diff_vs_rangeguard": t["max_abs_diff_vs_rangeguard"],
                  "golden_top1_differs": t["golden_top1_differs"]},
        "ratio": statistics.median(rg_rates) / statistics.median(t_rates),
        # round i of each tool ran back to back, under about the same load: their ratios
        # show how far the machine's load moved the result
        "round_ratios": [a / b for a, b in zip(rg_rates, t_rates)],
        "sdc_plus_due_difference": (c["sdc"] + c["due"]) - (t["sdc"] + t["due"]),
        "pairs_differing_at_least": bound,
    }


def print_table(s, out=sys.stdout):
    rg, t = s["rangeguard"], s["torch"]
    rounds = lambda rates: ", ".join(f"{r:,.0f}" for r in rates)  # noqa: E731
    print(f"{s['model']}: {s['faults']} faults x {s['samples']} samples = {s['pairs']:,} pairs, "
          f"{s['threads']} thread(s)", file=out)
    print("| tool | inferences/s per round | median | plain inference/s | SDC | DUE | SDC+DUE |", file=out)
    print("|---|---|---:|---:|---:|---:|---:|", file=out)
    for name, x in (("rangeguard", rg), ("torch", t)):
        print(f"| {name} | {rounds(x['rates'])} | {x['median_rate']:,.0f} | {x['plain_rate']:,.0f} "
              f"| {x['sdc']} | {x['due']} | {x['sdc'] + x['due']} |", file=out)
    verdict = "holds" if s["ratio"] >= 3 else "MISSED"
    spread = f"{min(s['round_ratios']):.2f}-{max(s['round_ratios']):.2f}x"
    print(f"ratio rangeguard/torch: {s['ratio']:.2f}x (of the medians; round by round "
          f"{spread}; target >= 3x: {verdict}); "
          f"SDC+DUE difference {s['sdc_plus_due_difference']:+d}; "
          f"pairs classified differently >= {s['pairs_differing_at_least']}; "
          f"torch vs rangeguard clean logits: max |diff| {t['max_abs_diff_vs_rangeguard']:.2g}, "
          f"golden top-1 differs on {t['golden_top1_differs']} input(s)", file=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rangeguard", nargs="+", required=True, help="rangeguard inject --json reports")
    ap.add_argument("--torch", nargs="+", required=True, help="torch_inject.py reports")
    ap.add_argument("--json", help="also write the summary here")
    args = ap.parse_args()
    try:
        s = compare([load(p) for p in args.rangeguard], [load(p) for p in args.torch])
    except (ValueError, KeyError, OSError) as e:
        print(f"inject_compare: error: {e}", file=sys.stderr)
        return 1
    print_table(s)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(s, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
