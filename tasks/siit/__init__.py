"""Learned models whose circuit is known by construction, down to the edge (SIIT, edge-strict).

``python -m tasks.siit.train`` trains one (:mod:`tasks.siit.train`), ``python -m tasks.siit.check``
accepts or rejects it (:mod:`tasks.siit.check`); every shipped model that passed is registered as
a task ``siit-<program>-s<seed>`` (:mod:`tasks.siit.task`).
"""

from tasks.siit.task import register_shipped

register_shipped()
