"""Playbooks: the data that says what a request does, and the code that carries it out.

Modules (import them directly; this package imports nothing so that loading one part never
drags in the others):

* :mod:`.subjects` -- SUBJECT parsing and normalisation (``parse_subject``, ``read_subjects``);
* :mod:`.loader` -- playbook YAML loading and validation, errors naming file, line and key;
  the registry of playbook kinds;
* :mod:`.policy` -- the erasure kind's schema and policy, pure planning decisions;
* :mod:`.discovery` -- every user, identity and profile of a person (read-only);
* :mod:`.engine` -- runs a playbook's steps; ledger intent/outcome around destructive calls;
* :mod:`.erasure` -- the erasure steps, evidence record and batch pipeline (``erase``);
* :mod:`.access` -- the access (DSAR) kind.
"""

__all__: list[str] = []
