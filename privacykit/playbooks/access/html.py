"""``index.html``: the answer as a person reads it, opened by double-click.

Owns :func:`write_html` and its template. One self-contained page: no scripts, no
external resources (a Content-Security-Policy says so to the browser too), every value
from Zendesk autoescaped by jinja2 and shown as text (comment bodies are the plain-text
version, never Zendesk's HTML). It shows the conversations the way the person saw them
-- who wrote what, when, with the files attached -- then their profiles, organizations,
events, and what this answer covers. It is streamed: tickets are read from the spool one
at a time.

The only links are to the downloaded attachments next to the page (relative paths
privacykit made itself) and to anchors on the page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

import jinja2
from markupsafe import Markup

from privacykit.playbooks.access.kind import ART15_FIELDS

__all__ = ["write_html"]

_SAFE_FILE = re.compile(r"^attachments/[0-9]{1,20}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,130}$")
_RELATIONS = {
    "requested": "you opened it",
    "ccd": "you were copied (CC)",
    "followed": "you follow it",
}

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your data in our customer support system</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 0 auto;
  padding: 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 2px solid #ccd; margin-top: 2.5rem; }
nav a { margin-right: 1rem; } .meta, .small { color: #555; font-size: .9rem; }
.ticket { border: 1px solid #ccd; border-radius: 6px; padding: .5rem 1rem; margin: 1rem 0; }
.comment { border-left: 4px solid #aab; padding: .25rem .75rem; margin: .75rem 0;
  background: #f7f7fa; }
.comment.you { border-left-color: #2a7; background: #f2fbf5; }
.comment.internal { border-left-color: #c80; background: #fff8ec; }
.who { font-weight: 600; } .body { white-space: pre-wrap; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #dde; padding: .25rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
th { background: #f0f0f5; } .value { white-space: pre-wrap; }
</style>
</head>
<body>
<h1>Your data in our customer support system</h1>
<p>This page was prepared on {{ doc.generated_at }} by {{ doc.processing.controller }} in
answer to your request for a copy of your personal data (GDPR Art. 15 and 20), reference
<strong>{{ doc.request_id }}</strong>. It shows what our customer support system (Zendesk)
holds about you. The same data is in <code>data.json</code> (machine-readable) and the
CSV files next to this page.</p>
<nav><a href="#conversations">Conversations</a><a href="#you">Your details</a>
<a href="#organizations">Organizations</a><a href="#profiles">Profiles</a>
<a href="#events">Events</a><a href="#about">About this answer</a></nav>
{% if not doc.found %}
<h2>We found no data about you</h2>
<p>We searched the places listed under <a href="#about">About this answer</a> and found no
record about you.</p>
{% endif %}

<h2 id="conversations">Your conversations with us</h2>
<p class="small">{{ doc.others.note }}</p>
{% for ticket in tickets %}
<article class="ticket" id="ticket-{{ ticket.id }}">
<h3>Request #{{ ticket.id }}: {{ ticket.subject or ticket.raw_subject or "(no subject)" }}</h3>
<p class="meta">Status: {{ ticket.status or "unknown" }}
&middot; opened {{ ticket.created_at or "-" }} &middot; {{ relations(ticket.relations) }}</p>
{% for c in ticket.comments %}
<div class="comment {{ 'you' if c.author_kind == 'you' }} {{ 'internal' if c.public is false }}">
<div class="who">{{ c.author or "unknown" }}
{%- if c.author_kind == "agent" %} (our staff){% endif %}
<span class="meta">&middot; {{ c.created_at or "" }}</span></div>
{% if c.public is false -%}
<div class="meta">Internal note by our staff (not shown to you in Zendesk)</div>
{%- endif %}
<div class="body">{{ body(c) }}</div>
{% if c.attachments %}<ul>
{% for a in c.attachments %}<li>
{%- if a.downloaded and safe_file(a.file) -%}
<a href="{{ a.file }}">{{ a.file_name or a.file }}</a> ({{ a.bytes }} bytes)
{%- else -%}
{{ a.file_name or "file" }}: not included ({{ a.not_downloaded_reason or "not downloaded" }})
{%- endif %}</li>
{% endfor %}</ul>{% endif %}
</div>
{% endfor %}
{% set rating = ticket.satisfaction_rating %}
{% if rating and rating.score not in (none, "unoffered", "offered") %}
<p class="meta">Rating: {{ rating.score }}{% if rating.comment %}: {{ rating.comment }}{% endif %}
</p>
{% endif %}
</article>
{% else %}
<p>No conversations.</p>
{% endfor %}

<h2 id="you">Your details</h2>
{% for user in doc.users %}
<h3>Account {{ user.id }}</h3>
{{ record(user) }}
{% else %}<p>None.</p>{% endfor %}
{% if doc.identities %}
<h3>Ways we can reach or recognise you</h3>
{{ rows(doc.identities, ["type", "value", "verified", "primary", "created_at"]) }}
{% endif %}

<h2 id="organizations">Organizations</h2>
{% for org in doc.organizations %}
<h3>{{ org.name or ("Organization " ~ org.id) }}</h3>{{ record(org) }}
{% else %}<p>None.</p>{% endfor %}
{% if doc.organization_memberships %}
{{ rows(doc.organization_memberships, ["organization_id", "user_id", "default", "created_at"]) }}
{% endif %}

<h2 id="profiles">Customer profiles</h2>
{% for profile in doc.profiles %}
<h3>{{ profile.source }} / {{ profile.type }}</h3>
{{ record(profile) }}
{% else %}<p>None.</p>{% endfor %}

<h2 id="events">Events</h2>
{% if doc.events %}
{{ rows(doc.events, ["created_at", "source", "type", "description", "properties"]) }}
{% else %}<p>None.</p>{% endif %}

{% if doc.compliance_deletion_statuses %}
<h2>Deletion history</h2>
{{ rows(doc.compliance_deletion_statuses, ["application", "action", "created_at"]) }}
{% endif %}

<h2 id="about">About this answer</h2>
<h3>What we searched</h3>
<ul>{% for system in doc.searched.systems %}<li>{{ system }}</li>{% endfor %}</ul>
<h3>What this answer does not cover</h3>
<ul>{% for item in doc.not_covered %}<li>{{ item }}</li>{% endfor %}</ul>
<h3>Other people in your conversations</h3>
<p>{{ doc.others.note }}</p>
{% if doc.people %}{{ rows(doc.people, ["shown_as", "kind"]) }}{% endif %}
<h3>How we process your data</h3>
{% for name, heading in facts %}
<h4>{{ heading }}</h4>
{% set value = doc.processing[name] %}
{% if value is string %}<p>{{ value }}</p>
{% else %}<ul>{% for item in value %}<li>{{ item }}</li>{% endfor %}</ul>{% endif %}
{% endfor %}
<p class="small">privacykit {{ doc.tool_version }} &middot; {{ doc.schema }}</p>
</body>
</html>
"""

_RECORD = jinja2.Template(
    "<table>{% for key, value in items %}<tr><th>{{ key }}</th>"
    '<td class="value">{{ value }}</td></tr>{% endfor %}</table>',
    autoescape=True,
)
_ROWS = jinja2.Template(
    "<table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>"
    "{% for row in rows %}<tr>{% for value in row %}"
    '<td class="value">{{ value }}</td>{% endfor %}</tr>{% endfor %}</table>',
    autoescape=True,
)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _record(record: Mapping[str, Any]) -> Any:
    items = [(key, _text(value)) for key, value in record.items()]
    return Markup(_RECORD.render(items=items))


def _rows(records: list[Mapping[str, Any]], columns: list[str]) -> Any:
    rows = [[_text(record.get(column)) for column in columns] for record in records]
    return Markup(_ROWS.render(columns=columns, rows=rows))


def _body(comment: Mapping[str, Any]) -> str:
    for key in ("plain_body", "body"):
        value = comment.get(key)
        if isinstance(value, str):
            return value
    return ""


def _relations(relations: Any) -> str:
    names = [_RELATIONS.get(str(r), str(r)) for r in relations or []]
    return ", ".join(names) or "-"


def _environment() -> jinja2.Environment:
    # autoescape=True: every {{ }} is HTML-escaped; nothing is marked safe except the
    # tables built above from escaped templates.
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    env.globals.update(
        record=_record,
        rows=_rows,
        body=_body,
        relations=_relations,
        safe_file=lambda path: isinstance(path, str) and bool(_SAFE_FILE.match(path)),
        facts=[(name, heading) for name, (_is_list, heading) in ART15_FIELDS.items()],
    )
    return env


def write_html(handle: IO[bytes], export: Mapping[str, Any]) -> None:
    """Write the page for ``export`` (its ``tickets`` may be any re-iterable), streamed."""
    template = _environment().from_string(TEMPLATE)
    for chunk in template.generate(doc=export, tickets=iter(export["tickets"])):
        handle.write(chunk.encode("utf-8"))
