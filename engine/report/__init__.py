"""Reports of run and grid directories.

- `source`: load a run or grid directory tolerantly (torn files are skipped with a note);
- `stats`: mean ± 95% CI over seeds (Student t);
- `seed_test`: strategy A vs B with seeds and queries both random (the test, power, MDE); `simulate` checks it;
- `arms`: a group's cells as samples of that test; `claims`: verdicts on 2408.10536's claims (Holm, margins);
  `power_tables`: what a grid can detect and the seeds it needs; `published`: the grid beside the papers' numbers;
- `tables`: table models (summary, significance, per-language, language-pair matrix, language bias, alpha sweep);
- `export`: render as md | csv | json | latex, write atomically, print with Rich;
- `plots`: PNG plots (loss curves, setting bars with CI, pair heatmaps, language bias, alpha sweep), matplotlib Agg.

Import the submodules directly; this package imports nothing (matplotlib only loads with `plots`).
"""
