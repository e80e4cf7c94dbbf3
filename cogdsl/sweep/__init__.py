"""``cogdsl sweep`` and ``cogdsl table``: many training runs of specs over seeds and settings, on Ray Tune.

    cogdsl sweep specs/ntm_copy.yaml --seeds 3 --set train.optimizer.lr=1e-3,3e-4 --out runs/sweeps/lr
    cogdsl sweep --plan sweeps/stack_languages.yaml          # a plan file: the table of a results page
    cogdsl table runs/sweeps/lr --markdown lr.md --csv lr.csv

One module per job: :mod:`~cogdsl.sweep.settings` (dotted ``--set`` paths into a spec),
:mod:`~cogdsl.sweep.plan` (command line or plan file -> trials with stable ids), :mod:`~cogdsl.sweep.trial`
(one trial: a training run into its run folder, its marker), :mod:`~cogdsl.sweep.score` (what a trial
measures after training), :mod:`~cogdsl.sweep.run` (the Ray Tune driver, resuming, the summary),
:mod:`~cogdsl.sweep.table` (run folders -> Markdown and CSV), :mod:`~cogdsl.sweep.command` (the two
commands). Only the driver imports Ray; ``cogdsl table`` needs no Ray. docs/sweeps.md has the whole story.
"""
