"""A Physics-IQ Verified submission package made from finished runs, and its checks.

``python -m pipeline.submission run=DIR [run=DIR ...] out=DIR``: each run (a seed of the same
settings) gives one ``runs/<model>-<op|bpp>-run_0N/`` folder of its conformed videos; the package
gets ``descriptions.csv`` and ``submission.yaml``, the card, with every field the records decide
filled (``card.py``) and the Verified scores aggregated over the runs. The package is then checked
with the leaderboard's rules (``checks.py``); ``python -m pipeline.submission check=DIR`` checks
any package. The fields only a person may fill (terms, warranties, organisation, ...) stay empty
and are listed.
"""
