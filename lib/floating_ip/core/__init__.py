"""The decision core: plain data in (``model.Observation``), plain data out (``model.Plan``).

Nothing here does I/O, logs, reads the clock or draws random numbers, so every decision can be
tested as a table and replayed from a recorded observation. The single entry point is
``floating_ip.core.plan.plan``.
"""
