"""The access (DSAR, GDPR Art. 15/20) playbook: everything Zendesk holds on a person.

An access run is read-only against Zendesk: it sends GET requests only, through the
read-only transport. The ledger never sees the data: it gets the request (keyed subject
reference), counts, Zendesk ids and the sha256 of every prepared file. The data goes only
to the output directory (files 0600, folders privacykit creates 0700).

The package, module by module (each says in its docstring what it owns):

* :mod:`.kind` -- the playbook kind, the Art. 15 facts, the typed :class:`AccessPolicy`;
* :mod:`.collect` -- the read-only steps (the person steps are the shared ones);
  :mod:`.tickets` -- the conversation steps (tickets, comments, attachments);
* :mod:`.spool` -- conversations on disk while a request runs;
  :mod:`.conversations` -- them between collection and export;
  :mod:`.people` -- other people in them (the ``others`` policy);
* :mod:`.job` -- one subject's state while it runs, and the results;
* :mod:`.export` -- ``data.json`` and the answer's files; :mod:`.csvs` -- the CSVs;
  :mod:`.html` -- ``index.html``; :mod:`.schema` -- the JSON Schema of ``data.json``;
* :mod:`.files` -- the output directory, per-subject folders, private files;
* :mod:`.evidence` -- the evidence record for the ledger and the signed report;
* :mod:`.runner` -- the batch run and what the CLI calls (:func:`access_request`);
* :mod:`.values` -- small helpers for Zendesk's JSON values.

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
    from privacykit.playbooks.access.conversations import (
        TICKET_COUNT_KEYS,
        Conversations,
        PresentedTickets,
        ticket_stats,
    )
    from privacykit.playbooks.access.csvs import (
        CSV_FORMULA_TRIGGERS,
        CSV_TABLES,
        csv_cell,
        csv_tables,
        render_csv,
        table_columns,
        table_rows,
        write_csv,
    )
    from privacykit.playbooks.access.evidence import (
        EVIDENCE_SCHEMA_ID,
        REPORT_FILE,
        categories,
        evidence_record,
    )
    from privacykit.playbooks.access.export import (
        DATA_FILE,
        INDEX_FILE,
        OTHERS_NOTES,
        build_export,
        deliver,
        write_json,
    )
    from privacykit.playbooks.access.files import (
        DeliveredFile,
        PrivateWriter,
        check_case_refs,
        check_output_dir,
        folder_names,
        make_private_dir,
        prepare_output_dir,
        subject_dir,
        write_private_file,
    )
    from privacykit.playbooks.access.html import (
        write_html,
    )
    from privacykit.playbooks.access.job import (
        NOT_COVERED,
        AccessJob,
        AccessRun,
        Collected,
        Gathered,
        Outcome,
        SubjectResult,
        not_covered,
    )
    from privacykit.playbooks.access.kind import (
        ACCESS_KIND,
        ACCESS_STEPS,
        ART15_FIELDS,
        OTHERS_POLICIES,
        TICKET_RELATIONS,
        AccessPolicy,
        ProcessingFacts,
    )
    from privacykit.playbooks.access.people import (
        Participant,
        People,
        present_ticket,
    )
    from privacykit.playbooks.access.runner import (
        AccessLedger,
        Deliverer,
        access_request,
        run_access,
    )
    from privacykit.playbooks.access.schema import (
        EXPORT_SCHEMA,
        EXPORT_SCHEMA_ID,
        SchemaViolation,
        validate,
    )
    from privacykit.playbooks.access.spool import (
        Spool,
        spool_dir,
    )
    from privacykit.playbooks.access.tickets import (
        TicketClient,
        TicketCollector,
        attachment_file_name,
    )
    from privacykit.playbooks.request import (
        ledger_view,
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
    "INDEX_FILE",
    "NOT_COVERED",
    "OTHERS_NOTES",
    "OTHERS_POLICIES",
    "REPORT_FILE",
    "TICKET_COUNT_KEYS",
    "TICKET_RELATIONS",
    "AccessClient",
    "AccessJob",
    "AccessLedger",
    "AccessPolicy",
    "AccessRun",
    "Collected",
    "Collector",
    "Conversations",
    "DeliveredFile",
    "Deliverer",
    "Gathered",
    "Outcome",
    "Participant",
    "People",
    "PresentedTickets",
    "PrivateWriter",
    "ProcessingFacts",
    "SchemaViolation",
    "Spool",
    "SubjectResult",
    "TicketClient",
    "TicketCollector",
    "access_request",
    "attachment_file_name",
    "build_export",
    "categories",
    "check_case_refs",
    "check_output_dir",
    "collect",
    "csv_cell",
    "csv_tables",
    "deliver",
    "evidence_record",
    "folder_names",
    "ledger_view",
    "make_private_dir",
    "not_covered",
    "prepare_output_dir",
    "present_ticket",
    "render_csv",
    "run_access",
    "spool_dir",
    "subject_dir",
    "table_columns",
    "table_rows",
    "ticket_stats",
    "validate",
    "write_csv",
    "write_html",
    "write_json",
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
    "privacykit.playbooks.access.conversations": (
        "TICKET_COUNT_KEYS",
        "Conversations",
        "PresentedTickets",
        "ticket_stats",
    ),
    "privacykit.playbooks.access.csvs": (
        "CSV_FORMULA_TRIGGERS",
        "CSV_TABLES",
        "csv_cell",
        "csv_tables",
        "render_csv",
        "table_columns",
        "table_rows",
        "write_csv",
    ),
    "privacykit.playbooks.access.evidence": (
        "EVIDENCE_SCHEMA_ID",
        "REPORT_FILE",
        "categories",
        "evidence_record",
    ),
    "privacykit.playbooks.access.export": (
        "DATA_FILE",
        "INDEX_FILE",
        "OTHERS_NOTES",
        "build_export",
        "deliver",
        "write_json",
    ),
    "privacykit.playbooks.access.files": (
        "DeliveredFile",
        "PrivateWriter",
        "check_case_refs",
        "check_output_dir",
        "folder_names",
        "make_private_dir",
        "prepare_output_dir",
        "subject_dir",
        "write_private_file",
    ),
    "privacykit.playbooks.access.html": ("write_html",),
    "privacykit.playbooks.access.job": (
        "NOT_COVERED",
        "AccessJob",
        "AccessRun",
        "Collected",
        "Gathered",
        "Outcome",
        "SubjectResult",
        "not_covered",
    ),
    "privacykit.playbooks.access.kind": (
        "ACCESS_KIND",
        "ACCESS_STEPS",
        "ART15_FIELDS",
        "OTHERS_POLICIES",
        "TICKET_RELATIONS",
        "AccessPolicy",
        "ProcessingFacts",
    ),
    "privacykit.playbooks.access.people": (
        "Participant",
        "People",
        "present_ticket",
    ),
    "privacykit.playbooks.access.runner": (
        "AccessLedger",
        "Deliverer",
        "access_request",
        "run_access",
    ),
    "privacykit.playbooks.access.schema": (
        "EXPORT_SCHEMA",
        "EXPORT_SCHEMA_ID",
        "SchemaViolation",
        "validate",
    ),
    "privacykit.playbooks.access.spool": (
        "Spool",
        "spool_dir",
    ),
    "privacykit.playbooks.access.tickets": (
        "TicketClient",
        "TicketCollector",
        "attachment_file_name",
    ),
    "privacykit.playbooks.request": ("ledger_view",),
}
lazy_exports(__name__, _EXPORTS)
