"""The words a run is configured with, defined once: batch strategies, devices, the other choice options, and the
keys that must be positive. The CLI's `choices`, the preset checks, the TUI's checkboxes, the sampler's registry and
the report's ordering all read them from here.

(Evaluation settings, metric keys and bias keys belong to the results model, `hbt.engine.evaluation.results`.)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import ConfigError, one_of


@dataclass(frozen=True)
class Strategy:
    """One batch strategy, declared once: its name in configs, what the papers call it, where reports place it,
    whether it trains (`grid`: allowed in a preset's `strategies` and `train --strategy`), whether it is one of
    2408.10536's three (`main`: X-X-mono, X-Y and hybrid; the TUI Setup screen's checkboxes, the strategies its claims
    need), and the training pairs its batches draw. The sampler (hbt.engine.training.sampler.SAMPLERS) keys its
    implementations by these entries; `check_config` (before a model is loaded) and the sampler (on the pairs drawn)
    both read the pair rules from here."""

    name: str
    paper_name: str  # LAReQA (2004.05484) and 2408.10536 names, shown in tables and the reference comparison
    rank: int  # report order: the baseline first, then LAReQA's baselines, then 2408.10536's three
    grid: bool
    main: bool
    xx: bool = False  # its batches draw X-X pairs (question and answer in one language): it needs some
    xy: bool = False  # its batches draw X-Y pairs (languages differ): it needs some, unless every batch is X-X
    only_lang: str | None = None  # it trains on this language's pairs only (LAReQA's En-En)
    only_lang_name: str | None = None  # that language in words, for messages

    def needs_xy(self, every_batch_xx: bool = False) -> bool:
        """Whether training needs X-Y pairs: it draws X-Y batches, unless it draws both kinds and every batch is X-X
        (hybrid with p = 1)."""
        return self.xy and not (self.xx and every_batch_xx)


BASELINE = "none"  # evaluate the backbone as it is (the zero-shot row of a grid)
ZERO_SHOT = Strategy(BASELINE, "zero-shot", rank=0, grid=False, main=False)
XX = Strategy("xx", "X-X-mono", rank=3, grid=True, main=True, xx=True)
XY = Strategy("xy", "X-Y", rank=4, grid=True, main=True, xy=True)
HYBRID = Strategy("hybrid", "hybrid", rank=5, grid=True, main=True, xx=True, xy=True)
# LAReQA's X-X: same-language pairs, a batch mixing languages
XX_MIX = Strategy("xx-mix", "X-X", rank=2, grid=True, main=False, xx=True)
# LAReQA's En-En: English pairs only
EN_EN = Strategy("en-en", "En-En", rank=1, grid=True, main=False, xx=True, only_lang="en", only_lang_name="English")
# listed in the order the CLI and error messages list them
STRATEGY_TABLE = (ZERO_SHOT, XX, XY, HYBRID, XX_MIX, EN_EN)
STRATEGY_OF = {s.name: s for s in STRATEGY_TABLE}  # a run's `strategy` -> its declaration
STRATEGIES = tuple(s.name for s in STRATEGY_TABLE)  # every value of a run's `strategy`
GRID_STRATEGIES = tuple(s.name for s in STRATEGY_TABLE if s.grid)  # the trained ones: presets, `train --strategy`
MAIN_STRATEGIES = tuple(s.name for s in STRATEGY_TABLE if s.main)  # 2408.10536's X-X-mono, X-Y and hybrid
HYBRID_PARTS = (XX.name, XY.name)  # the two pure strategies hybrid mixes (its claims compare it with each)
STRATEGY_ORDER = tuple(s.name for s in sorted(STRATEGY_TABLE, key=lambda s: s.rank))
PAPER_NAMES = {s.name: s.paper_name for s in STRATEGY_TABLE}


# 2408.10536's alpha sweep: a grid with several hybrid_p values has one arm per value, named 'hybrid-a0.25'
# (cell ids, tables, plots); alpha = 1 and alpha = 0 are X-X-mono and X-Y batches from the hybrid sampler
ARM = re.compile(r"(?P<strategy>[a-z-]+?)-a(?P<alpha>[0-9]+(?:\.[0-9]+)?)")
PAPER_ALPHA = 0.5  # 2408.10536: alpha = 0.5 best overall
ALPHA_ROLES = {"xx": 1.0, "xy": 0.0, "hybrid": PAPER_ALPHA}  # the alpha that stands for a strategy in a sweep


def arm_name(strategy: str, alpha: float | None) -> str:
    """A grid arm: the strategy, or 'hybrid-a0.25' for one alpha of a sweep."""
    return strategy if alpha is None else f"{strategy}-a{alpha:g}"


def parse_arm(name: str) -> tuple[str, float | None]:
    """(strategy, alpha) of an arm name; alpha is None for a plain strategy."""
    match = ARM.fullmatch(name)
    if match is None or match["strategy"] not in STRATEGIES:
        return name, None
    return match["strategy"], float(match["alpha"])


def paper_name(strategy: str) -> str:
    """What the papers call a strategy ('xx' -> 'X-X-mono', 'hybrid-a0.25' -> 'hybrid α=0.25'); an unknown name is
    shown as it is."""
    base, alpha = parse_arm(strategy)
    if alpha is not None:
        return f"{PAPER_NAMES.get(base, base)} α={alpha:g}"
    return PAPER_NAMES.get(strategy, strategy)


def paper_arms(arms: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The arm that stands for each of 2408.10536's strategies in a grid: the strategy itself, else in an alpha sweep
    the hybrid arm of alpha 1 (X-X-mono), 0 (X-Y) or 0.5 (hybrid)."""
    alphas = {alpha: arm for arm in arms if (alpha := parse_arm(arm)[1]) is not None}
    out = {}
    for role, alpha in ALPHA_ROLES.items():
        if role in arms:
            out[role] = role
        elif alpha in alphas:
            out[role] = alphas[alpha]
    return out


def strategy_key(strategy: str) -> tuple[int, str]:
    """Sort key: none, en-en, xx-mix, xx, xy, hybrid (then its alpha arms by alpha), then any other by name."""
    base, alpha = parse_arm(strategy)
    if base in STRATEGY_ORDER:
        return STRATEGY_ORDER.index(base), "" if alpha is None else f"{alpha:012.6f}"
    return len(STRATEGY_ORDER), strategy


# devices: torch's names; cuda:N picks one GPU
DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
DEVICE_HELP = " | ".join(DEVICES)

# the other closed choices of a run (the CLI's `choices`, the config checks)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# what is encoded for a candidate: auto = each dataset's own convention (LAReQA, TyDi, XOR: the sentence or passage
# alone; MIRACL: title then text, as MIRACL's mDPR baselines); sentence = the candidate's text alone;
# sentence+context = LAReQA's answer input (sentence + paragraph; MIRACL: text + title); title+text = the article
# title, a space, then the text
TEXT_MODES = ("auto", "sentence", "sentence+context", "title+text")
# MIRACL topics with judgements but no relevant passage: keep = scored 0 in every metric, as trec_eval and
# pytrec_eval do (the default); drop = left out of the means (hbt before 2026-12)
EMPTY_TOPICS = ("keep", "drop")
HYBRID_MIXES = ("batch", "within")  # batch: whole batches are X-X or X-Y; within: each batch mixes both
XX_LANGS = ("balanced", "proportional")  # how X-X batches pick their language
EVAL_RUNTIMES = ("torch", "onnx-int8", "onnx-fp32")
PLOT_KINDS = ("all", "loss", "settings", "pairs", "bias", "alpha")  # hbt-bench plot --kind (alpha: an alpha sweep)
# the datasets hbt reads (data/registry.py holds what each one is, keyed by these names, and checks it has them all)
DATASET_NAMES = ("xquad-r", "mlqa-r", "tydi", "tydi-sentence", "miracl", "miracl-judged", "xor-retrieve")
INDEXES = ("exact", "ivf", "hnsw")  # top-k search over the multilingual pool (ranks and mAP are always exact)
# where a grid's cells run: in the submitting process, as worker processes here, as Slurm jobs, as Ray tasks
EXECUTORS = ("local", "processes", "slurm", "ray")
# report formats (hbt-bench export / show --format, the TUI's export): names, in words, the file the TUI writes
EXPORT_FORMATS = ("md", "csv", "json", "latex")
EXPORT_FORMAT_NAMES = {"md": "Markdown", "csv": "CSV", "json": "JSON", "latex": "LaTeX"}
EXPORT_FORMAT_FILES = {"md": "report.md", "csv": "report.csv", "json": "report.json", "latex": "report.tex"}
SLURM_BACKENDS = ("slurm", "local")  # local: submitit's LocalExecutor (the same job machinery, on this machine)

# run settings that must be > 0 when given (None = the default)
POSITIVE = ("steps", "epochs", "batch_size", "lr", "scale", "mini_batch_size", "max_seq_length",
            "eval_max_seq_length", "max_train_pairs",
            "max_queries", "eval_batch_size", "checkpoint_steps", "train_top_layers", "eval_steps",
            "early_stopping_patience")  # fmt: skip


def bad_value(key: str, detail: str) -> ConfigError:
    """`<key> <detail>` (e.g. 'steps must be positive, got 0'), carrying the key; a preset names the key its own
    way (`p.toml: [run] steps: must be positive, got 0`) from `key` and `detail`."""
    return ConfigError(f"{key} {detail}", key=key, detail=detail)


def check_strategy(strategy: str, allowed: tuple[str, ...] = STRATEGIES, key: str = "strategy") -> None:
    check_choice(key, "strategy", strategy, allowed)


def check_device(device: str, key: str = "device") -> None:
    if not DEVICE.fullmatch(device):
        raise one_of("device", device, DEVICES, key, sort=False)


def check_choice(key: str, kind: str, value: str, allowed: tuple[str, ...]) -> None:
    """`unknown <kind> 'x' (allowed: a, b)` for a value outside a closed choice (listed in the vocabulary's order)."""
    if value not in allowed:
        raise one_of(kind, value, allowed, key, sort=False)


MAX_COUNT = 2**31 - 1  # the largest step, batch or query count: what every library's int32 counters hold


def check_positive(key: str, value: float | None) -> None:
    """None is 'not given'; anything else must be > 0 (NaN is not) and finite (an infinite lr trains on NaN); a
    count (an int) at most MAX_COUNT (a 20-digit step count is a typo, not a budget)."""
    if value is not None and not value > 0:  # `not >` also catches NaN
        raise bad_value(key, f"must be positive, got {value}")
    if value is not None and not math.isfinite(value):
        raise bad_value(key, f"must be a finite number, got {value}")
    if isinstance(value, int) and value > MAX_COUNT:
        raise bad_value(key, f"must be at most {MAX_COUNT}, got {value}")


SEED_MAX = 2**32 - 1  # numpy's seed range (transformers' set_seed seeds numpy): the widest every library accepts


def check_seed(key: str, value: int) -> None:
    """A random seed: an integer in [0, 2**32 - 1]."""
    if not 0 <= value <= SEED_MAX:
        raise bad_value(key, f"must be an integer in [0, {SEED_MAX}], got {value}")


def check_unit(key: str, value: float | None, *, closed: bool = True) -> None:
    """A share or probability: in [0, 1] (closed) or [0, 1) (half-open); None is 'not given'."""
    if value is None:
        return
    if not (0 <= value <= 1 if closed else 0 <= value < 1):
        raise bad_value(key, f"must be in [0, 1{']' if closed else ')'}, got {value}")
