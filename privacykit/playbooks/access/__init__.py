"""The access (DSAR, GDPR Art. 15/20) playbook: everything Zendesk holds on a person.

An access run is read-only against Zendesk: it sends GET requests only. The ledger never
sees the data: it gets the request (keyed subject reference), counts, Zendesk ids and the
sha256 of every delivered file. The data goes only to the output directory (files 0600,
folders privacykit creates 0700).

The package, module by module (each says in its docstring what it owns):

* :mod:`.kind` -- the playbook kind, the Art. 15 facts, the typed :class:`AccessPolicy`;
* :mod:`.collect` -- the read-only steps (discovery is the shared one);
* :mod:`.job` -- one subject's state while it runs, and the results;
* :mod:`.export` -- ``data.json`` and the CSVs; :mod:`.schema` -- the JSON Schema of
  ``data.json``;
* :mod:`.files` -- the output directory, per-subject folders, private files;
* :mod:`.evidence` -- the evidence record for the ledger and the signed report;
* :mod:`.runner` -- the batch run and what the CLI calls (:func:`access_request`).

Everything public is re-exported here: ``from privacykit.playbooks.access import ...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.playbooks.access.collect import (
        ACCESS_ENDPOINTS,
        ACCESS_SYSTEMS,
        AccessClient,
        Collector,
        collect,
    )
    from privacykit.playbooks.access.evidence import (
        EVIDENCE_SCHEMA_ID,
        REPORT_FILE,
        categories,
        evidence_record,
        ledger_view,
    )
    from privacykit.playbooks.access.export import (
        CSV_FORMULA_TRIGGERS,
        CSV_TABLES,
        DATA_FILE,
        build_export,
        csv_cell,
        csv_tables,
        deliver,
        render_csv,
    )
    from privacykit.playbooks.access.files import (
        DeliveredFile,
        check_case_refs,
        folder_names,
        make_private_dir,
        prepare_output_dir,
        subject_dir,
        write_private_file,
    )
    from privacykit.playbooks.access.job import (
        AccessJob,
        AccessRun,
        Collected,
        Gathered,
        Outcome,
        SubjectResult,
    )
    from privacykit.playbooks.access.kind import (
        ACCESS_KIND,
        ACCESS_STEPS,
        ART15_FIELDS,
        AccessPolicy,
        ProcessingFacts,
    )
    from privacykit.playbooks.access.runner import (
        access_request,
        run_access,
    )
    from privacykit.playbooks.access.schema import (
        EXPORT_SCHEMA,
        EXPORT_SCHEMA_ID,
        SchemaViolation,
        validate,
    )

__all__ = [
    "ACCESS_ENDPOINTS",
    "ACCESS_KIND",
    "ACCESS_STEPS",
    "ACCESS_SYSTEMS",
    "ART15_FIELDS",
    "CSV_FORMULA_TRIGGERS",
    "CSV_TABLES",
    "DATA_FILE",
    "EVIDENCE_SCHEMA_ID",
    "EXPORT_SCHEMA",
    "EXPORT_SCHEMA_ID",
    "REPORT_FILE",
    "AccessClient",
    "AccessJob",
    "AccessPolicy",
    "AccessRun",
    "Collected",
    "Collector",
    "DeliveredFile",
    "Gathered",
    "Outcome",
    "ProcessingFacts",
    "SchemaViolation",
    "SubjectResult",
    "access_request",
    "build_export",
    "categories",
    "check_case_refs",
    "collect",
    "csv_cell",
    "csv_tables",
    "deliver",
    "evidence_record",
    "folder_names",
    "ledger_view",
    "make_private_dir",
    "prepare_output_dir",
    "render_csv",
    "run_access",
    "subject_dir",
    "validate",
    "write_private_file",
]

# Imported on first use (see privacykit._lazy): importing one module of this package
# (or the package) does not load the others.
_EXPORTS = {
    "privacykit.playbooks.access.collect": (
        "ACCESS_ENDPOINTS",
        "ACCESS_SYSTEMS",
        "AccessClient",
        "Collector",
        "collect",
    ),
    "privacykit.playbooks.access.evidence": (
        "EVIDENCE_SCHEMA_ID",
        "REPORT_FILE",
        "categories",
        "evidence_record",
        "ledger_view",
    ),
    "privacykit.playbooks.access.export": (
        "CSV_FORMULA_TRIGGERS",
        "CSV_TABLES",
        "DATA_FILE",
        "build_export",
        "csv_cell",
        "csv_tables",
        "deliver",
        "render_csv",
    ),
    "privacykit.playbooks.access.files": (
        "DeliveredFile",
        "check_case_refs",
        "folder_names",
        "make_private_dir",
        "prepare_output_dir",
        "subject_dir",
        "write_private_file",
    ),
    "privacykit.playbooks.access.job": (
        "AccessJob",
        "AccessRun",
        "Collected",
        "Gathered",
        "Outcome",
        "SubjectResult",
    ),
    "privacykit.playbooks.access.kind": (
        "ACCESS_KIND",
        "ACCESS_STEPS",
        "ART15_FIELDS",
        "AccessPolicy",
        "ProcessingFacts",
    ),
    "privacykit.playbooks.access.runner": (
        "access_request",
        "run_access",
    ),
    "privacykit.playbooks.access.schema": (
        "EXPORT_SCHEMA",
        "EXPORT_SCHEMA_ID",
        "SchemaViolation",
        "validate",
    ),
}
lazy_exports(__name__, _EXPORTS)
