"""Reports of run and grid directories.

- `source`: load a run or grid directory tolerantly (torn files are skipped with a note);
- `stats`: mean ± 95% CI over seeds (Student t), paired sign-flip randomization test on per-query AP;
- `tables`: table models (summary, significance, per-language, language-pair matrix, language bias);
- `export`: render as md | csv | json | latex, write atomically, print with Rich;
- `plots`: PNG plots (loss curves, setting bars with CI, pair heatmaps, language bias), matplotlib Agg.

Import the submodules directly; this package imports nothing (matplotlib only loads with `plots`).
"""
