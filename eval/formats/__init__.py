"""Output formats: what a run found, as files other tools read.

- :mod:`eval.formats.found`: per-edge scores (``scores/``) and method traces (``traces/``).
- :mod:`eval.formats.circuits`: the circuits at each evaluated size (``circuits/``);
  :mod:`eval.formats.draw_circuit` renders one (text, dot, png, svg) and
  :mod:`eval.formats.circuit` (``python -m eval.formats.circuit`` / ``circuitbench circuit``)
  prints or draws it from a run folder.
- :mod:`eval.formats.mib`: MIB / EAP-IG circuit files (``mib/``, ``python -m eval.formats.mib`` /
  ``circuitbench mib``); the name translation is :mod:`patching.mib_names`.
"""
