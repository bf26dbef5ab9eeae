"""Catalog governance: ``kmsnap lint`` (rules over a snapshot) and ``kmsnap stale`` (usage).

``rules`` is the catalogue of rules (ids, default severities, documentation), ``config`` turns
the ``lint:`` and ``stale:`` sections of kmsnap.yaml into checked values, ``engine`` runs the
rules over a ``Snapshot``, ``newonly`` keeps what a new snapshot introduces over a base,
``stale`` judges usage fields, and ``report`` renders findings in every format. This package
imports nothing of ``kmsnap.config`` (the config checker imports it) nor of the CLI.
"""
