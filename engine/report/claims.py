"""Verdicts on 2408.10536's claims, each decided by the seed-aware test (seed_test), corrected for multiplicity.

Claims (the paper's, on macro mAP and rank distance):
1. X-X-mono is best monolingually (beats X-Y and hybrid, mono mAP);
2. X-Y is best cross-lingually (beats X-X-mono and hybrid, cross mAP);
3. hybrid is best multilingually (beats X-X-mono and X-Y, multi mAP);
4. hybrid is at least as good as X-X-mono and X-Y in every setting: non-inferiority with a margin delta (mono,
   cross, multi mAP; `noninferiority_margin` in a preset, `--margin` on the CLI, default DEFAULT_MARGIN);
5. hybrid has a lower rank distance than X-X-mono (multilingual pool).
In an alpha sweep (one hybrid arm per alpha), X-X-mono, X-Y and hybrid are the alpha = 1, 0 and 0.5 arms (one
sampler) unless the grid also has xx, xy or hybrid cells, and two claims join:
6. alpha = 0.5 is best overall: it beats every alpha of the grid outside [0.4, 0.6] on overall mAP (the mean of
   mono, cross and multi);
7. results are stable for alpha in [0.4, 0.6]: every alpha of the grid in that range is within +-delta of alpha = 0.5
   on overall mAP (equivalence: two one-sided comparisons, as TOST).

Each comparison has an effect Delta = claimed - rival in the setting's macro value (rival - claimed for rank
distance, so that > 0 favours the claim), a bound (0 for "better", -delta for "at least as good", -delta and +delta
for "stable") and a side (the claim holds above the bound, or below it for the upper half of "stable"). The
seed-aware test gives Delta's 95% CI and a two-sided p-value against the bound; Holm's step-down correction runs over
every comparison of the table (statsmodels' multipletests), so a table's family-wise error is at most ALPHA.
A comparison supports its claim when its Holm-adjusted p < ALPHA on the claim's side of the bound, contradicts it
when significant on the other side, is undecided otherwise, and has "no seeds" when an arm has fewer than 2 seeds.
Verdict: not reproduced if a comparison contradicts; inconclusive (1 seed) if one has no seeds; reproduced if all
support; inconclusive otherwise. A row shows the one comparison that decided it: the strongest contradiction, the
first without seeds, the weakest support, or the weakest undecided comparison; the others are in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass

from statsmodels.stats.multitest import multipletests

from ..common.vocabulary import BASELINE, MAIN_STRATEGIES, PAPER_ALPHA, paper_arms, paper_name, parse_arm
from ..evaluation.results import RANKDIST
from .arms import MAP_SETTINGS, OVERALL, SETTING_LABEL, Comparisons
from .power_tables import power_table
from .seed_test import ALPHA, SeedTest
from .stats import MeanCI
from .table_rows import Group, Table, Value

DEFAULT_MARGIN = 0.01  # mAP: "at least as good" and "stable" tolerate a loss (a difference) smaller than this
STABLE_RANGE = (0.4, 0.6)  # 2408.10536: results "relatively stable for alpha between 0.4 and 0.6"
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
ONE_SEED = "inconclusive (1 seed)"
SUPPORT, CONTRADICT, UNDECIDED, NO_SEEDS = "support", "contradict", "undecided", "no seeds"


@dataclass(frozen=True)
class Claim:
    text: str
    kind: str  # better | noninferior | equivalent
    strategy: str  # a role (xx, xy, hybrid) or, for the alpha claims, an arm
    rivals: tuple[str, ...]
    settings: tuple[str, ...]  # mono | cross | multi | rankdist (lower is better) | overall


CLAIMS = (
    Claim("X-X-mono best monolingual", "better", "xx", ("xy", "hybrid"), ("mono",)),
    Claim("X-Y best cross-lingual", "better", "xy", ("xx", "hybrid"), ("cross",)),
    Claim("hybrid best multilingual", "better", "hybrid", ("xx", "xy"), ("multi",)),
    Claim("hybrid at least as good as X-X-mono and X-Y in every setting", "noninferior", "hybrid", ("xx", "xy"),
          MAP_SETTINGS),
    Claim("hybrid lower rank distance than X-X-mono", "better", "hybrid", ("xx",), (RANKDIST,)),
)  # fmt: skip
ALPHA_BEST = "α = 0.5 best overall"
ALPHA_STABLE = "stable for α in [0.4, 0.6]"


@dataclass
class Comparison:
    """One comparison of a claim: the claimed arm against a rival in a setting, against a bound on one side."""

    claim: Claim
    arm: str
    rival: str
    setting: str
    bound: float  # on Delta, oriented so that > 0 favours the claim
    side: int  # +1: the claim holds when Delta > bound; -1: when Delta < bound
    test: SeedTest | None
    adjusted: float | None = None
    outcome: str = UNDECIDED

    @property
    def sign(self) -> float:
        return -1.0 if self.setting == RANKDIST else 1.0  # lower rank distance favours the claim

    @property
    def effect(self) -> float | None:
        return None if self.test is None else self.sign * self.test.effect

    @property
    def half_width(self) -> float | None:
        return None if self.test is None else self.test.half_width

    @property
    def strength(self) -> float:
        """Evidence for the claim: the t statistic on the claim's side of the bound (no test: 0)."""
        t = self.test.t if self.test is not None else None
        return 0.0 if t is None else self.side * self.sign * t

    @property
    def label(self) -> str:
        bound = "0" if self.bound == 0 else f"{self.bound:+.3g}"
        return f"vs {paper_name(self.rival)}, {SETTING_LABEL[self.setting]}, Δ {'>' if self.side > 0 else '<'} {bound}"

    def detail(self) -> str:
        if self.test is None:
            return f"{self.label}: no data"
        text = f"{self.label}: Δ {self.effect:+.4f}"
        if self.half_width is not None:
            text += f" ± {self.half_width:.4f}"
        if self.test.p is None:
            return f"{text} ({self.test.why}): {self.outcome}"
        return f"{text}, p {self.test.p:.3g} (Holm {self.adjusted:.3g}): {self.outcome}"


def _checks(claim: Claim, margin: float) -> list[tuple[float, int]]:
    """(bound, side) of each comparison of a claim with one rival in one setting."""
    if claim.kind == "noninferior":
        return [(-margin, 1)]
    if claim.kind == "equivalent":
        return [(-margin, 1), (margin, -1)]
    return [(0.0, 1)]


def alpha_claims(arms: list[str]) -> tuple[list[Claim], list[str]]:
    """The alpha claims a sweep can test, and why the others cannot be."""
    sweep = {alpha: arm for arm in arms if (alpha := parse_arm(arm)[1]) is not None}
    if len(sweep) < 2:
        return [], []
    if PAPER_ALPHA not in sweep:
        return [], [f"α claims not tested: the sweep has no α = {PAPER_ALPHA:g} arm"]
    low, high = STABLE_RANGE
    paper = sweep[PAPER_ALPHA]
    outside = tuple(arm for alpha, arm in sweep.items() if not low <= alpha <= high)
    inside = tuple(arm for alpha, arm in sweep.items() if low <= alpha <= high and alpha != PAPER_ALPHA)
    claims, why = [], []
    if outside:
        claims.append(Claim(ALPHA_BEST, "better", paper, outside, (OVERALL,)))
    else:
        why.append(f"'{ALPHA_BEST}' not tested: the sweep has no α outside [{low:g}, {high:g}]")
    if inside:
        claims.append(Claim(ALPHA_STABLE, "equivalent", paper, inside, (OVERALL,)))
    else:
        why.append(f"'{ALPHA_STABLE}' not tested: the sweep has no α in [{low:g}, {high:g}] besides {PAPER_ALPHA:g}")
    return claims, why


def evaluate(group: Group, tests: Comparisons, margin: float) -> tuple[list[tuple[Claim, list[Comparison]]], list[str]]:
    """Every claim the group can test with its comparisons (Holm-adjusted, outcomes set), and notes on the others."""
    roles = paper_arms(group.strategies)
    plan: list[tuple[Claim, list[Comparison]]] = []
    claims = list(CLAIMS) if all(r in roles for r in MAIN_STRATEGIES) else []
    extra, why = alpha_claims(group.strategies)
    for claim in [*claims, *extra]:
        arm = roles.get(claim.strategy, claim.strategy)
        comps = []
        for setting in claim.settings:
            for rival in (roles.get(r, r) for r in claim.rivals):
                for bound, side in _checks(claim, margin):
                    sign = -1.0 if setting == RANKDIST else 1.0
                    test = tests(arm, rival, setting, null=sign * bound)
                    comps.append(Comparison(claim, arm, rival, setting, bound, side, test))
        plan.append((claim, comps))
    tested = [c for _, comps in plan for c in comps if c.test is not None and c.test.p is not None]
    if tested:
        adjusted = multipletests([c.test.p for c in tested if c.test], alpha=ALPHA, method="holm")[1]
        for c, p in zip(tested, adjusted, strict=True):
            c.adjusted = float(p)
    for _, comps in plan:
        for c in comps:
            c.outcome = _outcome(c)
    return plan, why


def _outcome(c: Comparison) -> str:
    if c.test is None:
        return UNDECIDED
    if c.test.p is None:
        return NO_SEEDS if c.test.why == "fewer than 2 seeds" else UNDECIDED
    if c.adjusted is None or c.adjusted >= ALPHA or c.effect is None:
        return UNDECIDED
    return SUPPORT if c.side * (c.effect - c.bound) > 0 else CONTRADICT


def verdict(comparisons: list[Comparison]) -> tuple[str, Comparison | None]:
    """The claim's verdict and the comparison that decided it (module docstring)."""
    if not comparisons:
        return INCONCLUSIVE, None
    by = {o: [c for c in comparisons if c.outcome == o] for o in (SUPPORT, CONTRADICT, UNDECIDED, NO_SEEDS)}
    if by[CONTRADICT]:
        return NOT_REPRODUCED, min(by[CONTRADICT], key=lambda c: c.strength)
    if by[NO_SEEDS]:
        return ONE_SEED, by[NO_SEEDS][0]
    if len(by[SUPPORT]) == len(comparisons):
        return REPRODUCED, min(by[SUPPORT], key=lambda c: c.strength)
    return INCONCLUSIVE, min(by[UNDECIDED], key=lambda c: c.strength)


def _row(claim: Claim, comps: list[Comparison]) -> list[Value]:
    outcome, decided = verdict(comps)
    if decided is None or decided.test is None:
        return [claim.text, outcome, None, None, None, None, None]
    test = decided.test
    effect = MeanCI(decided.effect or 0.0, decided.half_width, min(test.seeds))
    return [claim.text, outcome, decided.label, effect, decided.adjusted, f"{test.seeds[0]} vs {test.seeds[1]}",
            test.queries or None]  # fmt: skip


def claims_table(group: Group, tests: Comparisons, margin: float | None = None) -> Table | None:
    """The claims table of one backbone x dataset; None unless the group has X-X-mono, X-Y and hybrid arms (or an
    alpha sweep with alpha = 0.5)."""
    margin = DEFAULT_MARGIN if margin is None else margin
    plan, why = evaluate(group, tests, margin)
    if not plan:
        return None
    rows = [_row(claim, comps) for claim, comps in plan]
    roles = paper_arms(group.strategies)
    substituted = [f"{paper_name(r)} = {arm}" for r, arm in roles.items() if arm != r]
    n = sum(len(comps) for _, comps in plan)
    notes = [
        "claims of 2408.10536; each row shows the one comparison that decided its verdict (the others below): Δ = "
        "claimed - rival in the setting's macro value, signed so that > 0 favours the claim (rank distance: rival - "
        "claimed), ± the half-width of its 95% CI (not adjusted)",
        "test: seed-aware (training runs and queries both random; Student t with Satterthwaite degrees of freedom "
        "on a crossed random-effects model, docs/statistics.md), two-sided against the comparison's bound",
        f"multiplicity: Holm over the {n} comparisons of this table (family-wise error {ALPHA}); p is Holm-adjusted",
        f"margin δ = {margin:g} mAP ('at least as good': Δ > -δ; 'stable': -δ < Δ < +δ, two one-sided comparisons as "
        "TOST; set noninferiority_margin in the preset or --margin)",
        f"reproduced: every comparison significant on the claim's side of its bound; not reproduced: one significant "
        f"on the other side; {ONE_SEED}: an arm with fewer than 2 seeds (no training variance to estimate); "
        "inconclusive: anything else",
        *([f"arms: {', '.join(substituted)} (an α sweep: one sampler)"] if substituted else []),
        *why,
        *(f"{claim.text}: " + "; ".join(c.detail() for c in comps) for claim, comps in plan),
    ]
    return Table(
        "claims",
        f"The paper's claims: {group.backbone} on {group.dataset}",
        ["claim", "verdict", "decided by", "Δ ± 95% CI", "p (Holm)", "seeds", "n"],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "margin": margin, "comparisons": n},
    )


def claims_tables(group: Group, tests: Comparisons, margin: float | None = None) -> list[Table]:
    """The claims table (when the group can test a claim), then the power table (when it has seeds to estimate)."""
    out = []
    claims = claims_table(group, tests, margin)
    if claims is not None:
        out.append(claims)
    trained = [s for s in group.strategies if s != BASELINE]
    power = power_table(group, tests, trained, int(claims.meta["comparisons"]) if claims else 1)
    if power is not None:
        out.append(power)
    return out
