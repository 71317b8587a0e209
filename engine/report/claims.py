"""Verdicts on 2408.10536's claims for a grid with X-X-mono (xx), X-Y (xy) and hybrid cells.

Claims (the paper's, on mAP and rank distance):
1. X-X-mono is best monolingually (beats X-Y and hybrid, mono mAP);
2. X-Y is best cross-lingually (beats X-X-mono and hybrid, cross mAP);
3. hybrid is best multilingually (beats X-X-mono and X-Y, multi mAP);
4. hybrid is at least as good as X-X-mono and X-Y in every setting (mono, cross, multi mAP);
5. hybrid has a lower rank distance than X-X-mono (multilingual pool).

Each claim is a set of comparisons (claimed strategy vs a rival in a setting). For each: the effect (mean over
queries of the per-query difference, oriented so that > 0 favours the claim; per-query AP, or per-query rank distance
for claim 5), a two-sided paired sign-flip p-value over queries (stats.paired_permutation_test, queries averaged over
seeds) and, with >= 2 seeds of both strategies, the 95% CI over seeds of the per-seed difference of the setting's
macro value (seeds paired by seed number).

A comparison supports a "better" claim when its effect is > 0 with p < ALPHA (and the seed CI, when there is one,
lies above 0); it contradicts it when the effect is < 0 with p < ALPHA. For claim 4 (non-inferiority) a comparison
contradicts when hybrid is significantly worse and supports when its effect is >= 0 and it is not contradicted.
Verdict: "not reproduced" if any comparison contradicts, "reproduced" if all support, else "inconclusive".
"""

from __future__ import annotations

from dataclasses import dataclass

from hbt.engine.common.vocabulary import MAIN_STRATEGIES, paper_name
from hbt.engine.evaluation.results import RANK_DISTANCE, RANKDIST, DatasetSummary, as_setting
from hbt.engine.report.stats import MeanCI, mean_ci
from hbt.engine.report.tables import Group, Table, Value, _Tests

ALPHA = 0.05
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass(frozen=True)
class Claim:
    text: str
    kind: str  # better | noninferior
    strategy: str
    rivals: tuple[str, ...]
    settings: tuple[str, ...]  # mono | cross | multi | rankdist (lower is better)


CLAIMS = (
    Claim("X-X-mono best monolingual", "better", "xx", ("xy", "hybrid"), ("mono",)),
    Claim("X-Y best cross-lingual", "better", "xy", ("xx", "hybrid"), ("cross",)),
    Claim("hybrid best multilingual", "better", "hybrid", ("xx", "xy"), ("multi",)),
    Claim("hybrid at least as good as X-X-mono and X-Y in every setting", "noninferior", "hybrid", ("xx", "xy"),
          ("mono", "cross", "multi")),
    Claim("hybrid lower rank distance than X-X-mono", "better", "hybrid", ("xx",), ("rankdist",)),
)  # fmt: skip
NEEDED = MAIN_STRATEGIES  # 2408.10536's three: X-X-mono, X-Y, hybrid


@dataclass
class Comparison:
    rival: str
    setting: str
    effect: float | None  # > 0 favours the claim
    p: float | None
    n: int
    seed_ci: MeanCI | None
    outcome: str  # support | contradict | undecided


def _seed_value(group: Group, cell_summary: DatasetSummary | None, setting: str) -> float:
    if cell_summary is None:
        raise KeyError(group.dataset)
    if setting == RANKDIST:
        return float(cell_summary.bias.overall[RANK_DISTANCE])
    return float(cell_summary.block(as_setting(setting)).macro["map"])


def seed_difference(group: Group, a: str, b: str, setting: str) -> MeanCI | None:
    """Mean and 95% CI over seeds of (a - b) in the setting's macro value, seeds paired by seed number; None unless
    both strategies have >= 2 common seeds."""
    values: dict[str, dict[int, float]] = {}
    for s in (a, b):
        values[s] = {}
        for cell in group.by_strategy.get(s, []):
            try:
                values[s][cell.seed] = _seed_value(group, group.summary(cell), setting)
            except (KeyError, TypeError, ValueError):
                continue
    common = sorted(set(values[a]) & set(values[b]))
    if len(common) < 2:
        return None
    return mean_ci([values[a][k] - values[b][k] for k in common])


def compare(group: Group, tests: _Tests, claim: Claim, rival: str, setting: str) -> Comparison:
    sign = -1.0 if setting == "rankdist" else 1.0  # lower rank distance favours the claim
    test = tests(claim.strategy, rival, setting)
    raw = seed_difference(group, claim.strategy, rival, setting)
    seed_ci = MeanCI(sign * raw.mean, raw.ci, raw.n, raw.std) if raw is not None else None
    if test is None or test.p_value is None:
        return Comparison(rival, setting, None, None, 0, seed_ci, "undecided")
    effect, p = sign * test.mean_diff, test.p_value
    significant = p < ALPHA
    if significant and effect < 0:
        outcome = "contradict"
    elif claim.kind == "noninferior":
        outcome = "support" if effect >= 0 else "undecided"
    else:
        seeds_agree = seed_ci is None or seed_ci.ci is None or seed_ci.mean - seed_ci.ci > 0
        outcome = "support" if significant and effect > 0 and seeds_agree else "undecided"
    return Comparison(rival, setting, effect, p, test.n, seed_ci, outcome)


def verdict(comparisons: list[Comparison]) -> str:
    outcomes = {c.outcome for c in comparisons}
    if "contradict" in outcomes:
        return NOT_REPRODUCED
    if outcomes == {"support"}:
        return REPRODUCED
    return INCONCLUSIVE


def _detail(c: Comparison) -> str:
    where = "rank distance" if c.setting == "rankdist" else c.setting
    if c.effect is None:
        return f"vs {paper_name(c.rival)} ({where}): no per-query data"
    text = f"vs {paper_name(c.rival)} ({where}): {c.effect:+.4f}, p {c.p:.3g}"
    if c.seed_ci is not None and c.seed_ci.ci is not None:
        text += f", seeds {c.seed_ci.mean:+.4f} ± {c.seed_ci.ci:.4f}"
    return text


def claims_table(group: Group, tests: _Tests) -> Table | None:
    """The claims table of one backbone x dataset; None unless the group has xx, xy and hybrid cells."""
    if not all(s in group.strategies for s in NEEDED):
        return None
    rows: list[list[Value]] = []
    details: list[str] = []
    for claim in CLAIMS:
        comps = [compare(group, tests, claim, r, s) for s in claim.settings for r in claim.rivals]
        known = [c for c in comps if c.effect is not None]
        weakest = min(known, key=lambda c: c.effect or 0.0) if known else None
        rows.append(
            [
                claim.text,
                verdict(comps),
                weakest.effect if weakest else None,
                max((c.p for c in known if c.p is not None), default=None),
                weakest.seed_ci if weakest else None,
                min((c.n for c in known), default=None),
            ]
        )
        details.append(f"{claim.text}: " + "; ".join(_detail(c) for c in comps))
    notes = [
        "claims of 2408.10536; effect: the weakest comparison's mean per-query difference, signed so that > 0 favours "
        "the claim (AP; rank distance for the last claim, lower is better); p: the largest two-sided paired "
        f"sign-flip p-value over queries ({tests.resamples} resamples, queries averaged over seeds); seed CI: 95% CI "
        "over seeds of the weakest comparison's macro difference (>= 2 seeds)",
        f"reproduced: every comparison favours the claim with p < {ALPHA} (and a seed CI above 0 when there is one; "
        "for 'at least as good': no significant loss and no negative effect); not reproduced: a rival significantly "
        "better; inconclusive: anything else. Not corrected for multiple comparisons",
        *details,
    ]
    return Table(
        "claims",
        f"The paper's claims: {group.backbone} on {group.dataset}",
        ["claim", "verdict", "effect", "p", "seed CI", "n"],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset},
    )
