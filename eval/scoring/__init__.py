"""Scoring: what a method's edge scores are worth, and which method is better.

- :mod:`eval.scoring.metrics`: edge-recovery and faithfulness metrics (pure functions).
- :mod:`eval.scoring.evaluate`: one method's scores against the ground truth and the model.
- :mod:`eval.scoring.cost`: wall time and peak memory of a method.
- :mod:`eval.scoring.converged`: whether a mask-learning run converged, from its trace.
- :mod:`eval.scoring.stats`: intervals and paired tests; :mod:`eval.scoring.compare`
  (``python -m eval.scoring.compare`` / ``circuitbench compare``): methods compared on a run.
"""
