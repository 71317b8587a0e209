"""Setup: pick a preset or build a grid by hand; every choice is validated by the engine as you go."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Collapsible, Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection

from ...engine.common.errors import ConfigError, UserError
from ...engine.common.hub import offline_by_setting
from ...engine.common.setting import Setting, parse_text, value_text
from ...engine.common.vocabulary import BASELINE, EXECUTORS, MAIN_STRATEGIES, SLURM_BACKENDS
from ...engine.runs.executor import ExecutorSpec
from ...engine.runs.presets import RUN_SETTINGS, Preset
from ...engine.runs.rundir import default_out
from ..backend import BackboneInfo, GridChoices, PresetInfo, error_text
from ..components.keyed_input import KeyedInput
from ..components.selection_lists import ALL, KeyedSelectionList, LanguageList, MarkedCheckbox
from ..messages import LaunchGrid
from .base import SectionScreen

CUSTOM = "__custom__"
DEFAULT_BACKBONE = "(default)"  # the engine's offline default backbone (None in a preset)
STRATEGIES = MAIN_STRATEGIES  # a checkbox each: 2408.10536's X-X-mono, X-Y and hybrid

# the [run] settings with a control of their own in the form; every other one gets a generated field under "more
# settings", made from its declaration in RunConfig (common/setting.py): a new setting is in the form once declared
OWN_CONTROL = ("hybrid_p", "langs", "train_data", "train_langs", "eval_data", "data_dir", "steps", "batch_size",
               "max_queries")  # fmt: skip
MORE_SETTINGS: list[Setting] = [s for name, s in RUN_SETTINGS.items() if name not in OWN_CONTROL]

# the form field that shows each engine key (ConfigError.key: a RunConfig or preset field), so it is highlighted
FIELD_OF_KEY: dict[str, str] = {
    **{name: s.field_id for name, s in RUN_SETTINGS.items()},  # 'batch_size' -> #batch-size
    "backbones": "backbones",
    "backbone": "backbones",
    "strategies": "strategies",
    "strategy": "strategies",
    "baseline": "baseline",
    "seeds": "seeds",
    "seed": "seeds",
    "out": "out",
    # where the cells run (ExecutorSpec's keys)
    "executor": "executor",
    "workers": "workers",
    "slurm_backend": "slurm-backend",
    "partition": "slurm-partition",
    "time_min": "slurm-time",
    "gpus": "slurm-gpus",
    "address": "ray-address",
    "num_cpus": "ray-cpus",
    "num_gpus": "ray-gpus",
}


ROW_OF = {  # controls sharing a row
    "batch-size": "steps",
    "max-queries": "steps",
    "train-langs": "train-data",
    "slurm-time": "slurm-partition",
    "slurm-gpus": "slurm-partition",
    "slurm-backend": "slurm-partition",
    "ray-cpus": "ray-address",
    "ray-gpus": "ray-address",
}
EXECUTOR_HINTS = {
    "local": "this process runs the cells one after another",
    "processes": "N cells at once as worker processes here",
    "slurm": "one Slurm job per cell (submitit)",
    "ray": "one Ray task per cell",
}


def row_for(field: str | None) -> str | None:
    """The id of the form row that holds the control `field`."""
    return None if field is None else f"row-{ROW_OF.get(field, field)}"


def field_for(key: str | None) -> str | None:
    """The id of the form field showing engine key `key` (None: no field of this form holds it)."""
    return None if key is None else FIELD_OF_KEY.get(key)


# The form only parses text into values here (a ConfigError naming the key when it does not parse); whether a value
# is allowed (positive, in [0, 1], at least 2...) is the engine's one validation's to say (Backend.build).


def split_list(text: str) -> list[str]:
    return [t for t in re.split(r"[,\s]+", text.strip()) if t]


def parse_int(key: str, text: str, *, blank_ok: bool = False) -> int | None:
    text = text.strip()
    if not text:
        if blank_ok:
            return None
        raise ConfigError(f"{key.replace('_', ' ')}: give a whole number", key=key)
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{key.replace('_', ' ')}: {text!r} is not a whole number", key=key) from None


def parse_number(key: str, text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{key.replace('_', ' ')}: {text!r} is not a number", key=key) from None


def parse_setting(name: str, text: str) -> Any:
    """A [run] setting's field: its text parsed as its declaration says (blank: None, the preset's value)."""
    return parse_text(RUN_SETTINGS[name], text)


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for token in split_list(text):
        try:
            seeds.append(int(token))
        except ValueError:
            raise ConfigError(f"seeds: {token!r} is not an integer (e.g. 0, 1, 2)", key="seeds") from None
    if not seeds:
        raise ConfigError("seeds: give at least one integer (e.g. 0)", key="seeds")
    return list(dict.fromkeys(seeds))


@dataclass
class Validation:
    preset: Preset | None
    out: Path | None
    message: str
    field: str | None = None


class Row(Horizontal):
    """A form row: a label on the left, the control(s) on the right."""

    DEFAULT_CSS = """
    Row {
        height: auto;
        margin-bottom: 1;
    }
    Row > .row-label {
        width: 15;
        color: $text-muted;
    }
    Row.-invalid > .row-label {
        color: $text-error;
        text-style: bold;
    }
    """

    def __init__(self, label: str, *children: Widget, field: str) -> None:
        self.label = label
        super().__init__(Label(self._marked(False, False), classes="row-label"), *children, id=f"row-{field}")

    def _marked(self, focused: bool, invalid: bool) -> str:
        """The label with its state in text too, not only in colour: ▸ holds the focus, ✗ is at fault."""
        return f"{'▸' if focused else ' '}{'✗' if invalid else ' '} {self.label}"

    def _relabel(self) -> None:
        self.query_one(".row-label", Label).update(self._marked(self.has_class("-focused"), self.has_class("-invalid")))

    def set_focused(self, on: bool) -> None:
        self.set_class(on, "-focused")
        self._relabel()

    def set_invalid(self, on: bool) -> None:
        self.set_class(on, "-invalid")
        self._relabel()


class SetupScreen(SectionScreen):
    SECTION = "setup"
    HELP = (
        "Pick a preset on the left (Enter) to fill the form, or 'custom grid' to start from the engine defaults. "
        "Every change is checked by the engine; the reason a choice is invalid shows at the bottom and its field is "
        "highlighted. 'runs on' picks where the cells run (this process, worker processes, Slurm jobs, Ray tasks; "
        "docs/executors.md). Launch starts the grid in its own process, writing into the output folder (default: "
        "runs/<date>-<time>-<preset>); hbt-tui follows it and can quit while it goes on."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+o", "focus_presets", "Presets", show=False),
        Binding("escape", "focus_presets", "Presets", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.preset_rows: list[PresetInfo] = []
        self.backbone_rows: list[BackboneInfo] = []
        self.base: Preset | None = None
        self.base_name = ""
        self.validation = Validation(None, None, "pick a preset")
        self._validate_pending = False
        self._filling = False

    # ---- layout ------------------------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="setup-body"):
            with Vertical(id="presets-pane"):
                yield Label("Presets", classes="pane-title")
                yield OptionList(id="presets")
            with VerticalScroll(id="form"):
                yield Static("", id="preset-description")
                yield Row("backbones", KeyedSelectionList(id="backbones", compact=True), field="backbones")
                yield Row(
                    "strategies",
                    Horizontal(
                        *(MarkedCheckbox(name, True, id=f"strat-{name}", compact=True) for name in STRATEGIES),
                        id="strategies",
                    ),
                    field="strategies",
                )
                yield Row(
                    "baseline",
                    MarkedCheckbox(BASELINE, True, id="baseline", compact=True),
                    Label(" the untrained backbone, zero-shot", classes="inline-label hint"),
                    field="baseline",
                )
                yield Row(
                    "hybrid p",
                    KeyedInput(placeholder="0.5", id="hybrid-p", compact=True, classes="short"),
                    Label(" P(X-X batch), or proportional", classes="inline-label hint"),
                    field="hybrid-p",
                )
                yield Row("languages", LanguageList(id="langs", compact=True), field="langs")
                yield Row(
                    "train data",
                    Select[str](
                        [(d.name, d.name) for d in self.hbt.backend.datasets() if d.parallel],
                        id="train-data",
                        allow_blank=False,
                        compact=True,
                    ),
                    Label(" langs ", classes="inline-label"),
                    KeyedInput(placeholder="all", id="train-langs", compact=True),
                    field="train-data",
                )
                yield Row("eval data", KeyedSelectionList(id="eval-data", compact=True), field="eval-data")
                yield Row(
                    "data dir",
                    KeyedInput(placeholder="online (or $HBT_DATA_DIR)", id="data-dir", compact=True),
                    field="data-dir",
                )
                yield Row(
                    "steps",
                    KeyedInput(id="steps", compact=True, classes="short"),
                    Label(" batch ", classes="inline-label"),
                    KeyedInput(id="batch-size", compact=True, classes="short"),
                    Label(" queries ", classes="inline-label"),
                    KeyedInput(placeholder="all", id="max-queries", compact=True, classes="short"),
                    field="steps",
                )
                yield Row(
                    "seeds", KeyedInput(placeholder="required, e.g. 0, 1, 2", id="seeds", compact=True), field="seeds"
                )
                yield Row(
                    "runs on",
                    Select[str]([(k, k) for k in EXECUTORS], id="executor", allow_blank=False, compact=True),
                    Label("", id="executor-hint", classes="inline-label hint"),
                    field="executor",
                )
                yield Row(
                    "workers",
                    KeyedInput(id="workers", compact=True, classes="short"),
                    Label(" cells at once on this machine", classes="inline-label hint"),
                    field="workers",
                )
                yield Row(
                    "slurm",
                    KeyedInput(placeholder="partition", id="slurm-partition", compact=True),
                    Label(" min ", classes="inline-label"),
                    KeyedInput(id="slurm-time", compact=True, classes="short"),
                    Label(" GPUs ", classes="inline-label"),
                    KeyedInput(id="slurm-gpus", compact=True, classes="short"),
                    Label(" via ", classes="inline-label"),
                    Select[str]([(b, b) for b in SLURM_BACKENDS], id="slurm-backend", allow_blank=False, compact=True),
                    field="slurm-partition",
                )
                yield Row(
                    "ray",
                    KeyedInput(placeholder="host:port (empty: a local instance)", id="ray-address", compact=True),
                    Label(" CPUs ", classes="inline-label"),
                    KeyedInput(id="ray-cpus", compact=True, classes="short"),
                    Label(" GPUs ", classes="inline-label"),
                    KeyedInput(id="ray-gpus", compact=True, classes="short"),
                    field="ray-address",
                )
                yield Row("output", KeyedInput(placeholder="auto", id="out", compact=True), field="out")
                title = f"more settings: the other {len(MORE_SETTINGS)} [run] keys (blank: the default)"
                with Collapsible(title=title, collapsed=True, id="more-settings"):
                    for setting in MORE_SETTINGS:
                        help_text = setting.help + (f" ({' | '.join(setting.choices)})" if setting.choices else "")
                        field = KeyedInput(
                            placeholder=setting.default_text() or "default",
                            id=setting.field_id,
                            compact=True,
                            classes="setting",
                        )
                        field.tooltip = help_text
                        yield Row(
                            setting.label(),
                            field,
                            Label(f" {help_text}", classes="inline-label hint"),
                            field=setting.field_id,
                        )
        with Horizontal(id="launch-bar"):
            yield Static("", id="validation")
            yield Button("Launch", id="launch", variant="success", disabled=True, compact=True)

    def on_mount(self) -> None:
        backend = self.hbt.backend
        self.preset_rows = backend.presets()
        self.backbone_rows = backend.backbones()
        options = self.query_one("#presets", OptionList)
        for row in self.preset_rows:
            options.add_option(Option(self._preset_prompt(row), id=row.name))
        options.add_option(Option(Text("custom grid", style="bold"), id=CUSTOM))
        self.query_one("#train-data", Select).set_options([(d.name, d.name) for d in backend.datasets() if d.parallel])
        eval_list = self.query_one("#eval-data", SelectionList)
        for d in backend.datasets():
            eval_list.add_option(Selection(self._dataset_label(d.name, len(d.languages)), d.name, False))
        self.query_one("#out", Input).placeholder = f"auto: {default_out('<preset>', self.hbt.runs_root, 0).parent}/"
        start = self.hbt.start_preset or next(
            (r.name for r in self.preset_rows if r.name == "quick" and not r.error),
            next((r.name for r in self.preset_rows if not r.error), CUSTOM),
        )
        self.choose_preset(start)
        index = next((i for i, r in enumerate(self.preset_rows) if r.name == start), len(self.preset_rows))
        options.highlighted = index
        options.focus()

    def _preset_prompt(self, row: PresetInfo) -> Text:
        if row.error:
            return Text.assemble((row.name, "bold"), ("  unavailable", "red"))
        cells = f"{row.n_cells} cell" + ("s" if row.n_cells != 1 else "")
        return Text.assemble((row.name, "bold"), (f"  {cells}", "cyan"))

    @on(OptionList.OptionHighlighted, "#presets")
    def _preset_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """Describe the highlighted preset (Enter applies it to the form)."""
        row = next((r for r in self.preset_rows if r.name == event.option.id), None)
        description = self.query_one("#preset-description", Static)
        if row is None:
            description.update(Text.assemble(("custom grid", "bold"), ("  the engine defaults; Enter to start", "dim")))
        elif row.error:
            description.update(Text.assemble((row.name, "bold"), ("  cannot be used now: ", "red"), (row.error, "red")))
        elif row.name == self.base_name:
            description.update(Text.assemble((row.name, "bold"), "  ", (row.description, "dim")))
        else:
            description.update(
                Text.assemble((row.name, "bold"), "  ", (row.description, "dim"), ("  (Enter: use it)", "italic"))
            )

    # ---- filling the form from a preset ------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#presets")
    def _preset_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.choose_preset(event.option.id)

    def choose_preset(self, name: str) -> None:
        backend = self.hbt.backend
        try:
            preset = backend.blank_preset() if name == CUSTOM else backend.load_preset(name)
        except Exception as exc:
            self.notify(error_text(exc), title=f"preset {name}", severity="error")
            return
        self.base, self.base_name = preset, name
        self._filling = True
        try:
            self._fill(preset)
        finally:
            self._filling = False
        self.schedule_validate()

    def _fill(self, p: Preset) -> None:
        run = p.run
        self.query_one("#preset-description", Static).update(
            Text.assemble((p.name, "bold"), "  ", (p.description or "", "dim"))
        )
        backbones = self.query_one("#backbones", SelectionList)
        backbones.clear_options()
        chosen = [b if b is not None else DEFAULT_BACKBONE for b in p.backbones] if self.base_name != CUSTOM else []
        known = {b.name: b for b in self.backbone_rows}
        names = list(dict.fromkeys([*chosen, *known]))
        if not names:
            names = [DEFAULT_BACKBONE]
        for name in names:
            backbones.add_option(Selection(self._backbone_label(name, known.get(name)), name, name in chosen))
        for s in STRATEGIES:
            self.query_one(f"#strat-{s}", Checkbox).value = s in p.strategies
        self.query_one("#baseline", Checkbox).value = p.baseline
        sweep = ", ".join(f"{a:g}" for a in p.hybrid_ps or [])
        self.query_one("#hybrid-p", Input).value = sweep or str(run.hybrid_p)
        self.query_one("#train-data", Select).value = run.train_data
        self.query_one("#train-langs", Input).value = ", ".join(run.train_langs or [])
        eval_list = self.query_one("#eval-data", SelectionList)
        eval_list.deselect_all()
        for name in run.eval_data:
            eval_list.select(name)
        self._fill_langs(run.langs)
        data_dir = run.data_dir or self.hbt.data_dir or ""
        self.query_one("#data-dir", Input).value = data_dir
        self.query_one("#steps", Input).value = "" if run.steps is None else str(run.steps)
        self.query_one("#batch-size", Input).value = str(run.batch_size)
        self.query_one("#max-queries", Input).value = "" if run.max_queries is None else str(run.max_queries)
        self.query_one("#seeds", Input).value = ", ".join(str(s) for s in p.seeds)
        for setting in MORE_SETTINGS:
            self.query_one(f"#{setting.field_id}", Input).value = value_text(getattr(run, setting.name))
        self._fill_executor(p.executor)

    def _fill_executor(self, spec: ExecutorSpec) -> None:
        self.query_one("#executor", Select).value = spec.kind
        self.query_one("#workers", Input).value = str(spec.workers)
        self.query_one("#slurm-partition", Input).value = spec.slurm.partition or ""
        self.query_one("#slurm-time", Input).value = str(spec.slurm.time_min)
        self.query_one("#slurm-gpus", Input).value = str(spec.slurm.gpus)
        self.query_one("#slurm-backend", Select).value = spec.slurm.backend
        self.query_one("#ray-address", Input).value = spec.ray.address or ""
        self.query_one("#ray-cpus", Input).value = f"{spec.ray.num_cpus:g}"
        self.query_one("#ray-gpus", Input).value = f"{spec.ray.num_gpus:g}"
        self._show_executor_rows()

    def _show_executor_rows(self) -> None:
        """Only the settings of the chosen executor are shown."""
        kind = self.query_one("#executor", Select).value
        backend = self.query_one("#slurm-backend", Select).value
        self.query_one("#row-workers").display = kind == "processes" or (kind == "slurm" and backend == "local")
        self.query_one("#row-slurm-partition").display = kind == "slurm"
        self.query_one("#row-ray-address").display = kind == "ray"
        self.query_one("#executor-hint", Label).update(f" {EXECUTOR_HINTS.get(str(kind), '')}")

    @on(Select.Changed, "#executor")
    @on(Select.Changed, "#slurm-backend")
    def _executor_changed(self) -> None:
        self._show_executor_rows()

    def _backbone_label(self, name: str, info: BackboneInfo | None) -> Text:
        label = Text(name)
        if name == DEFAULT_BACKBONE:
            label.append("  engine default", style="dim")
        elif info is None or info.offline is None:
            label.append("  ?", style="dim")
        elif info.offline:
            label.append("  ✓ offline", style="green")
        else:
            label.append("  ⇣ needs download", style="yellow")
        return label

    def _data_dir(self) -> str | None:
        return self._value("data-dir").strip() or None

    def _dataset_label(self, name: str, n_langs: int) -> Text:
        """A dataset with its local status, marked like the backbones are."""
        label = Text.assemble(name, (f"  ({n_langs} languages)", "dim"))
        local = self.hbt.backend.dataset_local(name, self._data_dir()) if self.is_mounted else None
        if local is True:
            label.append("  ✓ local", style="green")
        elif local is False:
            label.append("  ✗ not in the data dir", style="yellow")
        else:
            label.append("  ⇣ online", style="dim")
        return label

    @on(Input.Changed, "#data-dir")
    def _mark_datasets(self) -> None:
        eval_list = self.query_one("#eval-data", SelectionList)
        for i, d in enumerate(self.hbt.backend.datasets()):
            if i < eval_list.option_count:
                eval_list.replace_option_prompt_at_index(i, self._dataset_label(d.name, len(d.languages)))

    def missing_data(self, preset: Preset) -> Validation | None:
        """Why the grid cannot find its data in the data dir (a dataset it has no files of; no data dir while the
        hub is turned off), or None."""
        data_dir = self._data_dir()
        if data_dir is None and not os.environ.get("HBT_DATA_DIR") and offline_by_setting():
            why = (
                "no data dir, and the hub is turned off (HF_HUB_OFFLINE=1): nothing can be downloaded; give a data dir"
            )
            return Validation(None, None, why, "data-dir")
        needed = [(n, "eval-data") for n in preset.run.eval_data]
        needed += [(preset.run.train_data, "train-data")] if preset.strategies else []
        for name, wid in needed:
            if self.hbt.backend.dataset_local(name, data_dir) is False:
                why = f"{name} is not in the data dir {data_dir} (no files under {name}/): untick it or change the dir"
                return Validation(None, None, why, wid)
        return None

    def _languages_for(self, datasets: list[str]) -> list[str]:
        langs: dict[str, None] = {}
        for d in self.hbt.backend.datasets():
            if d.name in datasets:
                langs.update(dict.fromkeys(d.languages))
        return sorted(langs)

    def _fill_langs(self, chosen: list[str] | None) -> None:
        langs = self.query_one("#langs", SelectionList)
        eval_data = list(self.query_one("#eval-data", SelectionList).selected)
        available = self._languages_for(eval_data)
        langs.clear_options()
        langs.add_option(
            Selection(Text.assemble(("all", "bold"), ("  every language of the datasets", "dim")), ALL, not chosen)
        )
        extra = [lang for lang in (chosen or []) if lang not in available]  # shown so the engine can explain it
        for lang in [*available, *extra]:
            langs.add_option(Selection(lang, lang, bool(chosen) and lang in (chosen or [])))

    # ---- reacting to changes -----------------------------------------------------------------------------------

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Light the label of the row holding the focus (a class: :focus-within does not restyle a row's label)."""
        for row in self.query(Row):
            row.set_focused(event.widget in row.query("*"))

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        for row in self.query(Row):
            if event.widget in row.query("*"):
                row.set_focused(self.focused is not None and self.focused in row.query("*"))

    @on(SelectionList.SelectedChanged, "#eval-data")
    def _eval_changed(self) -> None:
        if self._filling:
            return
        self._fill_langs(self.selected_langs())
        self.schedule_validate()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        if not self._filling:
            self.schedule_validate()

    @on(Checkbox.Changed, "#strat-hybrid")
    def _hybrid_toggled(self, event: Checkbox.Changed) -> None:
        self.query_one("#hybrid-p", Input).disabled = not event.value

    def schedule_validate(self) -> None:
        if not self._validate_pending:
            self._validate_pending = True
            self.call_later(self.validate)

    # ---- validation --------------------------------------------------------------------------------------------

    def selected_langs(self) -> list[str] | None:
        return self.query_one("#langs", LanguageList).chosen()

    def choices(self) -> GridChoices:
        """The form as engine choices (a ConfigError naming the key of a value that does not parse)."""
        value = self._value
        backbones: list[str | None] = [
            None if b == DEFAULT_BACKBONE else b for b in self.query_one("#backbones", SelectionList).selected
        ]
        train_langs = split_list(value("train-langs"))
        if value("train-langs").strip() and not train_langs:  # ', ,' is a typo, not "all languages"
            raise ConfigError(
                f"train langs: {value('train-langs').strip()!r} names no language (leave it empty for all)",
                key="train_langs",
            )
        data_dir = value("data-dir").strip()
        train = self.query_one("#train-data", Select).value
        return GridChoices(
            backbones=backbones,
            strategies=[s for s in STRATEGIES if self.query_one(f"#strat-{s}", Checkbox).value],
            baseline=self.query_one("#baseline", Checkbox).value,
            hybrid_p=parse_setting("hybrid_p", value("hybrid-p")),
            langs=self.selected_langs(),
            train_langs=train_langs or None,
            train_data=str(train) if isinstance(train, str) else "mlqa-r",
            eval_data=list(self.query_one("#eval-data", SelectionList).selected),
            data_dir=data_dir or None,
            steps=parse_setting("steps", value("steps")),
            batch_size=parse_setting("batch_size", value("batch-size")),
            max_queries=parse_setting("max_queries", value("max-queries")),
            seeds=parse_seeds(value("seeds")),
            executor=self._executor_choice(),
            settings={s.name: v for s in MORE_SETTINGS if (v := parse_text(s, value(s.field_id))) is not None},
        )

    def _executor_choice(self) -> ExecutorSpec:
        """The executor fields over the preset's [executor] table (the engine validates the values)."""
        base = self.base.executor if self.base is not None else ExecutorSpec()
        value = self._value
        kind, backend = self.query_one("#executor", Select).value, self.query_one("#slurm-backend", Select).value
        cpus, gpus = parse_number("num_cpus", value("ray-cpus")), parse_number("num_gpus", value("ray-gpus"))
        return replace(
            base,
            kind=str(kind) if isinstance(kind, str) else "local",
            workers=parse_int("workers", value("workers")) or 0,
            slurm=replace(
                base.slurm,
                partition=value("slurm-partition").strip() or None,
                time_min=parse_int("time_min", value("slurm-time")) or 0,
                gpus=parse_int("gpus", value("slurm-gpus")) or 0,
                backend=str(backend) if isinstance(backend, str) else "slurm",
            ),
            ray=replace(
                base.ray,
                address=value("ray-address").strip() or None,
                num_cpus=base.ray.num_cpus if cpus is None else cpus,
                num_gpus=base.ray.num_gpus if gpus is None else gpus,
            ),
        )

    def _value(self, wid: str) -> str:
        return self.query_one(f"#{wid}", Input).value

    def check(self) -> Validation:
        """Build the grid from the form; never raises (the reason is in the result)."""
        if self.base is None:
            return Validation(None, None, "pick a preset (Enter) or 'custom grid'")
        try:
            preset = self.hbt.backend.build(self.base, self.choices())
        except UserError as exc:  # the field is found by the error's key, never by its words
            return Validation(None, None, error_text(exc), field_for(exc.key))
        except Exception as exc:
            return Validation(None, None, error_text(exc))
        if missing := self.missing_data(preset):
            return missing
        out_text = self._value("out").strip()
        out = Path(out_text) if out_text else None
        if out is not None and (out / "grid.json").exists():
            return Validation(None, None, f"{out} already holds a grid: pick another output folder", "out")
        return Validation(preset, out, "")

    def validate(self) -> Validation:
        self._validate_pending = False
        result = self.check()
        self.validation = result
        for row in self.query(Row):
            row.set_invalid(row.id == row_for(result.field))
        bar = self.query_one("#validation", Static)
        if result.preset is None:
            bar.update(Text.assemble(("✗ ", "bold red"), (result.message, "red")))
        else:
            bar.update(self._summary(result.preset, result.out))
        self.query_one("#launch", Button).disabled = result.preset is None
        self.refresh_bindings()
        return result

    def _summary(self, preset: Preset, out: Path | None) -> Text:
        cells = preset.cells()
        where = str(out) if out else f"{self.hbt.runs_root}/<time>-{preset.name}"
        strategies = ([BASELINE] if preset.baseline else []) + list(preset.strategies)
        return Text.assemble(
            ("✓ ", "bold green"),
            (f"{len(cells)} cells", "bold"),
            f": {len(preset.backbones)} backbone(s) × {'/'.join(strategies)} × {len(preset.seeds)} seed(s) → ",
            (where, "cyan"),
            f" on {preset.executor.describe()}" if preset.executor.kind != "local" else "",
        )

    # ---- actions -----------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return True  # launch too: on an invalid form it says why and goes to the field at fault

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        result = self.validate()
        if result.preset is None:
            self.notify(result.message, title="cannot launch", severity="error")
            if result.field is not None:
                self.focus_field(result.field)
            return
        out = result.out or default_out(result.preset.name, self.hbt.runs_root, self.hbt.now())
        self.post_message(LaunchGrid(result.preset, out))

    def focus_field(self, field: str) -> None:
        """Focus the control `field` (or its first focusable part: a row of checkboxes)."""
        widget = self.query_one(f"#{field}")
        for holder in widget.ancestors:
            if isinstance(holder, Collapsible):
                holder.collapsed = False  # a generated setting at fault: show it
        target = widget if widget.focusable else next((w for w in widget.query("*") if w.focusable), None)
        if target is not None:
            target.focus()

    def action_focus_presets(self) -> None:
        self.query_one("#presets", OptionList).focus()

    def set_field(self, wid: str, value: Any) -> None:
        """Set one control (for scripted use and tests): an Input's text, a Checkbox's state, a Select's value."""
        widget = self.query_one(f"#{wid}")
        if isinstance(widget, Input):
            widget.value = str(value)
        elif isinstance(widget, Checkbox | Select):
            widget.value = value
        else:
            raise TypeError(f"#{wid} is a {type(widget).__name__}")
