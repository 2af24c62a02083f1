#!/usr/bin/env python3
"""Generator for the Plinth demo catalogue (``plinth serve --demo``).

The demo describes *Northwind Labs*, a fictional mid-sized online retailer of
home and outdoor goods: 4 departments, 21 teams, ~60 people, 5 domains and
19 systems, each system living in its own "repository" folder next to this
script.  All files are Backstage descriptor YAML (catalog-info.yaml style);
the AI kinds (Model, Dataset, Prompt, Agent) use ``apiVersion:
plinth.dev/v1alpha1``.

Output layout (relative to this file)::

    catalog-info.yaml              root Location `demo-catalog`
    org/groups.yaml                organization, departments, teams
    org/users.yaml                 people
    architecture/catalog-info.yaml Domains and Environments
    <system>/catalog-info.yaml     System + its Components, APIs, Resources,
                                   Models, Datasets, Prompts and Agents

Usage::

    python3 examples/demo/generate.py          # rewrites the YAML in place

The script is deterministic (no randomness, no clock, no network) and uses the
standard library only, so re-running it on an unchanged script yields a
byte-identical tree.  The generated YAML is committed alongside it; edit the
data tables below, re-run, and commit both.  It asserts the basic invariants
(names, tags, references, acyclic dependsOn) before writing anything.
"""

import hashlib
import json
import os
import re
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
GH_ORG = "northwind-labs"
CORP = "northwindlabs.com"
BACKSTAGE = "backstage.io/v1alpha1"
PLINTH = "plinth.dev/v1alpha1"

# --------------------------------------------------------------------------
# Minimal deterministic YAML emitter (block style, 2-space indent)
# --------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_./($][A-Za-z0-9 _./()@,+:;?!%'&=$-]*$")
_NUMERICISH = re.compile(r"^[-+0-9._:eExXoO]+$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if (
        s
        and _PLAIN.match(s)
        and s.lower() not in _RESERVED
        and not _NUMERICISH.match(s)
        and not s.endswith((" ", ":"))
        and ": " not in s
        and " #" not in s
    ):
        return s
    return json.dumps(s)


def _inline(v):
    if isinstance(v, list):
        assert not v
        return "[]"
    if isinstance(v, dict):
        assert not v
        return "{}"
    return _scalar(v)


def _block(text, indent):
    body = text.rstrip() + "\n"
    assert "\t" not in body, "tabs are not allowed in block scalars"
    assert not body.startswith(" "), "block scalar must not start with a space"
    pad = " " * indent
    return [(pad + line) if line.strip() else "" for line in body.split("\n")[:-1]]


def _emit(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = _scalar(k)
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{key}:")
                out.extend(_emit(v, indent + 2))
            elif isinstance(v, str) and "\n" in v:
                out.append(f"{pad}{key}: |")
                out.extend(_block(v, indent + 2))
            else:
                out.append(f"{pad}{key}: {_inline(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = _emit(item, indent + 2)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out.extend(sub)
            elif isinstance(item, str) and "\n" in item:
                out.append(f"{pad}- |")
                out.extend(_block(item, indent + 2))
            else:
                out.append(f"{pad}- {_inline(item)}")
    else:
        raise TypeError(obj)
    return out


def to_yaml(obj):
    return "\n".join(_emit(obj)) + "\n"


def multi_doc(docs):
    return "---\n".join(to_yaml(d) for d in docs)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

_ACRONYMS = {
    "api": "API", "apis": "APIs", "bff": "BFF", "llm": "LLM", "sdk": "SDK", "ci": "CI",
    "pii": "PII", "mfa": "MFA", "sso": "SSO", "ios": "iOS", "seo": "SEO", "ui": "UI",
    "cdc": "CDC", "kb": "KB", "psp": "PSP", "slo": "SLO", "ml": "ML", "sms": "SMS",
    "graphql": "GraphQL", "k8s": "K8s", "db": "DB", "gpt": "GPT", "bge": "BGE",
    "m3": "M3", "4o": "4o", "sql": "SQL", "ai": "AI", "qa": "QA", "pr": "PR",
}


def titleize(name):
    return " ".join(_ACRONYMS.get(w, w.capitalize()) for w in re.split(r"[-_.]", name))


def pd_id(name):
    return "P" + hashlib.sha1(name.encode()).hexdigest().upper()[:6]


def slack(channel):
    return {"url": f"https://{GH_ORG}.slack.com/app_redirect?channel={channel}",
            "title": f"#{channel}", "icon": "chat"}


def dedent(text):
    lines = text.strip("\n").split("\n")
    ind = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[ind:] for l in lines) + "\n"


def meta(name, description, tags=(), links=(), annotations=None, title=None):
    m = OrderedDict()
    m["name"] = name
    if title:
        m["title"] = title
    m["description"] = description
    if tags:
        m["tags"] = list(tags)
    if links:
        m["links"] = list(links)
    if annotations:
        m["annotations"] = annotations
    return m


def entity(api_version, kind, metadata, spec):
    return OrderedDict([("apiVersion", api_version), ("kind", kind),
                        ("metadata", metadata), ("spec", spec)])


# --------------------------------------------------------------------------
# Organisation
# --------------------------------------------------------------------------

ORG = ("northwind", "Northwind Labs",
       "Northwind Labs, an online retailer of home and outdoor goods operating in Europe and North America.")

# department -> (display name, description, [teams])
DEPARTMENTS = OrderedDict([
    ("engineering", ("Commerce Engineering",
                     "Product engineering teams that build the shopping, ordering and customer journeys.",
                     ["team-checkout", "team-payments", "team-orders", "team-catalog", "team-search",
                      "team-fulfillment", "team-identity", "team-notifications", "team-support-tools"])),
    ("product", ("Product and Experience",
                 "Customer-facing web and mobile experiences, design system and growth.",
                 ["team-web", "team-mobile", "team-design-system", "team-growth"])),
    ("data-and-ml", ("Data and Machine Learning",
                     "Data platform, analytics, ML infrastructure and applied AI.",
                     ["team-data-eng", "team-ml-platform", "team-applied-ai", "team-analytics"])),
    ("platform", ("Platform Engineering",
                  "Cloud infrastructure, reliability, developer experience and security.",
                  ["team-sre", "team-developer-experience", "team-cloud-infra", "team-security"])),
])

TEAMS = OrderedDict([
    ("team-checkout", ("Checkout", "Cart, checkout flow, promotions and tax calculation.", "checkout-eng")),
    ("team-payments", ("Payments", "Payment processing, ledger, refunds, disputes and PSP integrations.", "payments-eng")),
    ("team-orders", ("Orders", "Order lifecycle, order history, invoices and returns.", "orders-eng")),
    ("team-catalog", ("Catalog", "Product information, pricing, inventory and reviews.", "catalog-eng")),
    ("team-search", ("Search and Discovery", "Product search, ranking, autocomplete and recommendations.", "search-eng")),
    ("team-fulfillment", ("Fulfillment", "Warehouses, shipping carriers and delivery tracking.", "fulfillment-eng")),
    ("team-identity", ("Identity", "Authentication, authorization, customer profiles and consent.", "identity-eng")),
    ("team-notifications", ("Notifications", "Email, SMS and push delivery infrastructure.", "notifications-eng")),
    ("team-support-tools", ("Support Tools", "Tools for the customer care organisation: ticketing, help center, agent console.", "support-tools")),
    ("team-web", ("Web", "The storefront website and its backend-for-frontend.", "web-eng")),
    ("team-mobile", ("Mobile", "iOS and Android shopping apps and the mobile BFF.", "mobile-eng")),
    ("team-design-system", ("Design System", "Shared UI components, tokens and accessibility.", "design-system")),
    ("team-growth", ("Growth", "Lifecycle marketing, loyalty and experimentation.", "growth")),
    ("team-data-eng", ("Data Engineering", "Ingestion, lakehouse, warehouse and data catalog.", "data-eng")),
    ("team-ml-platform", ("ML Platform", "Feature store, training pipelines, model serving and the LLM gateway.", "ml-platform")),
    ("team-applied-ai", ("Applied AI", "Production ML models and LLM agents for commerce and support.", "applied-ai")),
    ("team-analytics", ("Analytics", "Metrics layer, tracking, BI and business insights.", "analytics")),
    ("team-sre", ("Site Reliability Engineering", "Observability, incident response and SLOs.", "sre")),
    ("team-developer-experience", ("Developer Experience", "CI/CD, feature flags, service templates and the developer portal.", "devex")),
    ("team-cloud-infra", ("Cloud Infrastructure", "Kubernetes, networking, API gateway and the event bus.", "cloud-infra")),
    ("team-security", ("Security", "Application security, secrets, audit logging and privacy engineering.", "security")),
])

# (user name, display name, role, [groups])
USERS = [
    ("claire.dupont", "Claire Dupont", "Chief Technology Officer", ["northwind"]),
    ("james.whitaker", "James Whitaker", "VP Engineering, Commerce", ["engineering"]),
    ("ana.ruiz", "Ana Ruiz", "Chief Product Officer", ["product"]),
    ("ngozi.eze", "Ngozi Eze", "VP Data and Machine Learning", ["data-and-ml"]),
    ("markus.braun", "Markus Braun", "VP Platform Engineering", ["platform"]),
    ("amara.okafor", "Amara Okafor", "Engineering Manager, Checkout", ["team-checkout"]),
    ("lucas.meyer", "Lucas Meyer", "Senior Software Engineer", ["team-checkout"]),
    ("daniel.kowalski", "Daniel Kowalski", "Engineering Manager, Payments", ["team-payments"]),
    ("sofia.alvarez", "Sofia Alvarez", "Staff Software Engineer", ["team-payments"]),
    ("kenji.watanabe", "Kenji Watanabe", "Senior Software Engineer", ["team-payments"]),
    ("hannah.schmidt", "Hannah Schmidt", "Engineering Manager, Orders", ["team-orders"]),
    ("omar.haddad", "Omar Haddad", "Senior Software Engineer", ["team-orders"]),
    ("mateo.rossi", "Mateo Rossi", "Tech Lead, Catalog", ["team-catalog"]),
    ("chloe.dubois", "Chloe Dubois", "Senior Software Engineer", ["team-catalog"]),
    ("nikhil.sharma", "Nikhil Sharma", "Engineering Manager, Search", ["team-search"]),
    ("elena.petrova", "Elena Petrova", "Senior Search Engineer", ["team-search"]),
    ("jonas.berg", "Jonas Berg", "Machine Learning Engineer", ["team-search", "team-applied-ai"]),
    ("maria.santos", "Maria Santos", "Engineering Manager, Fulfillment", ["team-fulfillment"]),
    ("david.cohen", "David Cohen", "Senior Software Engineer", ["team-fulfillment"]),
    ("felix.wagner", "Felix Wagner", "Tech Lead, Identity", ["team-identity"]),
    ("yuki.tanaka", "Yuki Tanaka", "Senior Software Engineer", ["team-identity"]),
    ("samuel.mensah", "Samuel Mensah", "Software Engineer", ["team-identity", "team-security"]),
    ("laura.bianchi", "Laura Bianchi", "Tech Lead, Notifications", ["team-notifications"]),
    ("ivan.novak", "Ivan Novak", "Software Engineer", ["team-notifications"]),
    ("rachel.adams", "Rachel Adams", "Engineering Manager, Support Tools", ["team-support-tools"]),
    ("tomas.silva", "Tomas Silva", "Senior Software Engineer", ["team-support-tools"]),
    ("mei.chen", "Mei Chen", "Software Engineer", ["team-support-tools"]),
    ("ben.carter", "Ben Carter", "Engineering Manager, Web", ["team-web"]),
    ("ines.moreau", "Ines Moreau", "Senior Frontend Engineer", ["team-web"]),
    ("olivia.brown", "Olivia Brown", "Engineering Manager, Mobile", ["team-mobile"]),
    ("kwame.asante", "Kwame Asante", "Senior iOS Engineer", ["team-mobile"]),
    ("sara.lindqvist", "Sara Lindqvist", "Senior Android Engineer", ["team-mobile"]),
    ("noah.fischer", "Noah Fischer", "Design Engineer", ["team-design-system", "team-web"]),
    ("leila.karimi", "Leila Karimi", "Product Designer, Design System", ["team-design-system"]),
    ("emma.wilson", "Emma Wilson", "Growth Engineering Lead", ["team-growth"]),
    ("diego.fernandez", "Diego Fernandez", "Software Engineer", ["team-growth"]),
    ("lars.nielsen", "Lars Nielsen", "Data Engineering Manager", ["team-data-eng"]),
    ("fatima.rahman", "Fatima Rahman", "Senior Data Engineer", ["team-data-eng"]),
    ("pedro.costa", "Pedro Costa", "Data Engineer", ["team-data-eng"]),
    ("anna.kowalczyk", "Anna Kowalczyk", "Engineering Manager, ML Platform", ["team-ml-platform"]),
    ("rohan.mehta", "Rohan Mehta", "Senior ML Platform Engineer", ["team-ml-platform"]),
    ("julia.hoffmann", "Julia Hoffmann", "ML Platform Engineer", ["team-ml-platform"]),
    ("zara.ahmed", "Zara Ahmed", "Head of Applied AI", ["team-applied-ai", "team-ml-platform"]),
    ("marcus.johnson", "Marcus Johnson", "Staff Machine Learning Engineer", ["team-applied-ai"]),
    ("li.wei", "Li Wei", "Senior AI Engineer", ["team-applied-ai"]),
    ("chiara.romano", "Chiara Romano", "AI Engineer", ["team-applied-ai"]),
    ("sophie.laurent", "Sophie Laurent", "Analytics Lead", ["team-analytics"]),
    ("ethan.nguyen", "Ethan Nguyen", "Analytics Engineer", ["team-analytics"]),
    ("connor.walsh", "Connor Walsh", "SRE Manager", ["team-sre", "team-cloud-infra"]),
    ("nadia.popescu", "Nadia Popescu", "Senior Site Reliability Engineer", ["team-sre"]),
    ("victor.oliveira", "Victor Oliveira", "Site Reliability Engineer", ["team-sre"]),
    ("isabel.garcia", "Isabel Garcia", "Engineering Manager, Developer Experience", ["team-developer-experience"]),
    ("tom.andersen", "Tom Andersen", "Senior Platform Engineer", ["team-developer-experience"]),
    ("hiro.sato", "Hiro Sato", "Platform Engineer", ["team-developer-experience"]),
    ("patrick.obrien", "Patrick O'Brien", "Principal Cloud Engineer", ["team-cloud-infra"]),
    ("katarina.horvat", "Katarina Horvat", "Senior Cloud Engineer", ["team-cloud-infra"]),
    ("musa.ibrahim", "Musa Ibrahim", "Cloud Engineer", ["team-cloud-infra"]),
    ("eva.jansen", "Eva Jansen", "Head of Security", ["team-security"]),
    ("raj.iyer", "Raj Iyer", "Senior Security Engineer", ["team-security"]),
    ("helena.sousa", "Helena Sousa", "Privacy Engineer", ["team-security"]),
]


def build_groups():
    org_name, org_display, org_desc = ORG
    docs = [entity(BACKSTAGE, "Group",
                   meta(org_name, org_desc, tags=["organization"],
                        links=[{"url": f"https://www.{CORP}", "title": "Company website", "icon": "web"},
                               {"url": f"https://handbook.{CORP}", "title": "Employee handbook", "icon": "docs"}],
                        title=org_display),
                   OrderedDict([("type", "organization"),
                                ("profile", {"displayName": org_display, "email": f"hello@{CORP}"}),
                                ("children", list(DEPARTMENTS))]))]
    for dept, (display, desc, teams) in DEPARTMENTS.items():
        docs.append(entity(BACKSTAGE, "Group",
                           meta(dept, desc, tags=["department"], title=display),
                           OrderedDict([("type", "department"),
                                        ("profile", {"displayName": display, "email": f"{dept}@{CORP}"}),
                                        ("parent", org_name),
                                        ("children", list(teams))])))
        for team in teams:
            tdisplay, tdesc, channel = TEAMS[team]
            docs.append(entity(BACKSTAGE, "Group",
                               meta(team, tdesc, tags=["team"], title=f"Team {tdisplay}",
                                    links=[slack(channel)]),
                               OrderedDict([("type", "team"),
                                            ("profile", {"displayName": tdisplay, "email": f"{team}@{CORP}"}),
                                            ("parent", dept),
                                            ("children", [])])))
    return docs


def build_users():
    docs = []
    for name, display, role, groups in USERS:
        docs.append(entity(BACKSTAGE, "User",
                           meta(name, role),
                           OrderedDict([("profile", {"displayName": display, "email": f"{name}@{CORP}"}),
                                        ("memberOf", list(groups))])))
    return docs


# --------------------------------------------------------------------------
# Domains, systems, environments
# --------------------------------------------------------------------------

DOMAINS = OrderedDict([
    ("commerce", ("Commerce", "engineering", "Everything between browsing a product and the parcel arriving: catalog, search, checkout, payments, orders and fulfillment.")),
    ("customer", ("Customer", "product", "Customer accounts, storefront and mobile experiences, engagement and customer care.")),
    ("data-platform", ("Data Platform", "data-and-ml", "Ingestion, storage, transformation and analysis of company data.")),
    ("ai", ("AI", "data-and-ml", "Shared ML infrastructure and LLM-powered assistants and agents.")),
    ("infrastructure", ("Infrastructure", "platform", "Compute, networking, observability, security and developer tooling shared by every team.")),
])

# system -> (title, owner, domain, description, tags, slack channel)
SYSTEMS = OrderedDict([
    ("checkout", ("Checkout", "team-checkout", "commerce", "Shopping cart, checkout orchestration, promotions and tax.", ["tier-1", "pci"], "checkout-eng")),
    ("payments", ("Payments", "team-payments", "commerce", "Payment intents, PSP integrations, ledger, refunds, disputes and fraud screening.", ["tier-1", "pci"], "payments-eng")),
    ("orders", ("Orders", "team-orders", "commerce", "Order lifecycle from placement to invoice, order history and returns.", ["tier-1"], "orders-eng")),
    ("product-catalog", ("Product Catalog", "team-catalog", "commerce", "Product information, pricing, inventory, media and reviews.", ["tier-1"], "catalog-eng")),
    ("search", ("Search and Discovery", "team-search", "commerce", "Keyword and semantic product search, ranking and recommendations.", ["tier-1", "ml"], "search-eng")),
    ("fulfillment", ("Fulfillment", "team-fulfillment", "commerce", "Warehouse operations, carrier integrations and delivery tracking.", ["tier-2"], "fulfillment-eng")),
    ("identity", ("Identity", "team-identity", "customer", "Customer and staff authentication, authorization, profiles and consent.", ["tier-0", "gdpr"], "identity-eng")),
    ("storefront", ("Storefront", "team-web", "customer", "The shop website, its GraphQL BFF and the AI shopping assistant.", ["tier-1", "web"], "web-eng")),
    ("mobile-app", ("Mobile App", "team-mobile", "customer", "Backend and shared kits for the Northwind iOS and Android apps.", ["tier-1", "mobile"], "mobile-eng")),
    ("engagement", ("Customer Engagement", "team-growth", "customer", "Notifications, lifecycle campaigns, loyalty and experimentation.", ["tier-2", "gdpr"], "growth")),
    ("customer-support", ("Customer Support", "team-support-tools", "customer", "Ticketing, help center and the AI support copilot used by customer care.", ["tier-2"], "support-tools")),
    ("data-platform", ("Data Platform", "team-data-eng", "data-platform", "Change data capture, lakehouse, warehouse, orchestration and the data catalog.", ["tier-2", "data"], "data-eng")),
    ("analytics", ("Analytics", "team-analytics", "data-platform", "Event tracking, metrics layer, BI dashboards and the analytics copilot.", ["tier-3", "data"], "analytics")),
    ("ml-platform", ("ML Platform", "team-ml-platform", "ai", "Feature store, training, model serving, LLM gateway and embeddings.", ["tier-1", "ml"], "ml-platform")),
    ("ai-assistants", ("AI Assistants", "team-applied-ai", "ai", "Agent runtime, prompt registry, guardrails and RAG ingestion shared by all LLM agents.", ["tier-2", "llm"], "applied-ai")),
    ("developer-platform", ("Developer Platform", "team-developer-experience", "infrastructure", "CI/CD, deployments, feature flags, templates and the developer portal.", ["tier-1", "devex"], "devex")),
    ("platform-core", ("Platform Core", "team-cloud-infra", "infrastructure", "API gateway, event bus, rate limiting and Kubernetes platform.", ["tier-0"], "cloud-infra")),
    ("observability", ("Observability", "team-sre", "infrastructure", "Metrics, logs, alerting, SLOs and incident tooling.", ["tier-0", "sre"], "sre")),
    ("security", ("Security", "team-security", "infrastructure", "Secrets management, audit logging, PII detection and vulnerability management.", ["tier-0", "security"], "security")),
])

ENVIRONMENTS = [
    ("development", "Development", "dev", "Shared development clusters (eu-west-1), reset weekly."),
    ("staging", "Staging", "staging", "Production-like staging environment with synthetic data (eu-west-1)."),
    ("production", "Production", "production", "Customer-facing production in eu-west-1 and us-east-1."),
]


def build_architecture():
    docs = []
    for name, (title, owner, desc) in DOMAINS.items():
        docs.append(entity(BACKSTAGE, "Domain",
                           meta(name, desc, tags=["domain"], title=title),
                           OrderedDict([("owner", owner)])))
    for name, title, lifecycle, desc in ENVIRONMENTS:
        docs.append(entity(BACKSTAGE, "Environment",
                           meta(name, desc, tags=["kubernetes", "aws"], title=title,
                                links=[{"url": f"https://argocd.{CORP}/applications?cluster={name}",
                                        "title": "Argo CD", "icon": "dashboard"}]),
                           OrderedDict([("lifecycle", lifecycle), ("owner", "team-cloud-infra")])))
    return docs


def system_entity(name):
    title, owner, domain, desc, tags, channel = SYSTEMS[name]
    return entity(BACKSTAGE, "System",
                  meta(name, desc, tags=tags, title=title,
                       links=[{"url": f"https://github.com/{GH_ORG}/{name}", "title": "Repository", "icon": "github"},
                              {"url": f"https://grafana.{CORP}/dashboards/f/{name}", "title": "Dashboards", "icon": "dashboard"},
                              slack(channel)],
                       annotations=OrderedDict([("github.com/project-slug", f"{GH_ORG}/{name}"),
                                                ("backstage.io/techdocs-ref", "dir:.")])),
                  OrderedDict([("owner", owner), ("domain", domain)]))


# --------------------------------------------------------------------------
# API definition builders (OpenAPI 3.0, proto3, AsyncAPI 2.6)
# --------------------------------------------------------------------------

_SIMPLE_TYPES = {
    "string": {"type": "string"},
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer", "format": "int64"},
    "int32": {"type": "integer", "format": "int32"},
    "number": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "email": {"type": "string", "format": "email"},
    "uri": {"type": "string", "format": "uri"},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "example": "EUR"},
    "country": {"type": "string", "pattern": "^[A-Z]{2}$", "example": "DE"},
    "map": {"type": "object", "additionalProperties": {"type": "string"}},
    "object": {"type": "object", "additionalProperties": True},
}

COMMON_SCHEMAS = OrderedDict([
    ("Money", "amountMinor int; currency currency"),
    ("Address", "line1 string; line2? string; city string; postalCode string; country country"),
    ("Error", "code string; message string; traceId? string"),
])


def _schema_from(typ, refs):
    typ = typ.strip()
    if typ.startswith("[") and typ.endswith("]"):
        return OrderedDict([("type", "array"), ("items", _schema_from(typ[1:-1], refs))])
    if typ.startswith("enum(") and typ.endswith(")"):
        return OrderedDict([("type", "string"), ("enum", typ[5:-1].split("|"))])
    if typ in _SIMPLE_TYPES:
        return OrderedDict(_SIMPLE_TYPES[typ])
    refs.add(typ)
    return {"$ref": f"#/components/schemas/{typ}"}


def _object_schema(spec, refs):
    props, required = OrderedDict(), []
    for field in spec.split(";"):
        fname, ftype = field.strip().split(None, 1)
        if fname.endswith("?"):
            fname = fname[:-1]
        else:
            required.append(fname)
        props[fname] = _schema_from(ftype, refs)
    obj = OrderedDict([("type", "object")])
    if required:
        obj["required"] = required
    obj["properties"] = props
    return obj


def openapi(title, description, server, schemas, ops, version="1.0.0"):
    """ops: (method, path, summary, operationId, request schema|None, response type|None, extras)"""
    refs = set()
    paths = OrderedDict()
    for op in ops:
        method, path, summary, op_id, req, resp = op[:6]
        extra = op[6] if len(op) > 6 else {}
        o = OrderedDict([("summary", summary), ("operationId", op_id)])
        params = []
        for p in re.findall(r"\{(\w+)\}", path):
            params.append(OrderedDict([("name", p), ("in", "path"), ("required", True),
                                       ("schema", {"type": "string"})]))
        if extra.get("query"):
            for field in extra["query"].split(";"):
                qn, qt = field.strip().split(None, 1)
                required = not qn.endswith("?")
                params.append(OrderedDict([("name", qn.rstrip("?")), ("in", "query"), ("required", required),
                                           ("schema", _schema_from(qt, refs))]))
        if params:
            o["parameters"] = params
        if req:
            ct = extra.get("ct", "application/json")
            o["requestBody"] = OrderedDict([("required", True), ("content", {ct: {"schema": _schema_from(req, refs)}})])
        code = str(extra.get("code", 200 if resp else 204))
        responses = OrderedDict()
        if resp:
            responses[code] = OrderedDict([("description", extra.get("desc", {"201": "Created"}.get(code, "OK"))),
                                           ("content", {"application/json": {"schema": _schema_from(resp, refs)}})])
        else:
            responses[code] = {"description": extra.get("desc", "No content")}
        err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        if req:
            responses["400"] = OrderedDict([("description", "Invalid request"), ("content", err)])
        if "{" in path:
            responses["404"] = OrderedDict([("description", "Not found"), ("content", err)])
        o["responses"] = responses
        paths.setdefault(path, OrderedDict())[method] = o
    all_schemas = OrderedDict()
    for name, spec in schemas.items():
        all_schemas[name] = _object_schema(spec, refs)
    refs.add("Error")
    for name, spec in COMMON_SCHEMAS.items():
        if name in refs and name not in all_schemas:
            all_schemas[name] = _object_schema(spec, refs)
    missing = refs - set(all_schemas)
    assert not missing, f"{title}: undefined schemas {missing}"
    doc = OrderedDict([
        ("openapi", "3.0.3"),
        ("info", OrderedDict([("title", title), ("version", version), ("description", description)])),
        ("servers", [{"url": server}]),
        ("security", [{"bearerAuth": []}]),
        ("paths", paths),
        ("components", OrderedDict([
            ("securitySchemes", {"bearerAuth": OrderedDict([("type", "http"), ("scheme", "bearer"),
                                                            ("bearerFormat", "JWT")])}),
            ("schemas", all_schemas)])),
    ])
    return to_yaml(doc)


_PROTO_SCALARS = {"string", "int32", "int64", "uint32", "uint64", "bool", "double", "float", "bytes"}


def proto(package, service, doc, rpcs, messages, enums=None):
    """rpcs: (name, request, response, comment); messages: name -> 'type name; ...'"""
    enums = enums or {}
    uses_ts = any("Timestamp" in spec for spec in messages.values())
    go_pkg = package.split(".")
    lines = ['syntax = "proto3";', "", f"package {package};", ""]
    if uses_ts:
        lines += ['import "google/protobuf/timestamp.proto";', ""]
    lines += [f'option go_package = "github.com/{GH_ORG}/protos/gen/go/{"/".join(go_pkg[1:])};{go_pkg[-2]}{go_pkg[-1]}";',
              f'option java_package = "com.northwindlabs.{".".join(go_pkg[1:])}";', "",
              f"// {doc}", f"service {service} {{"]
    for i, (name, req, resp, comment) in enumerate(rpcs):
        if i:
            lines.append("")
        lines.append(f"  // {comment}")
        lines.append(f"  rpc {name}({req}) returns ({resp});")
    lines.append("}")
    for name, spec in messages.items():
        lines += ["", f"message {name} {{"]
        for n, field in enumerate(spec.split(";"), start=1):
            words = field.split()
            words = [("google.protobuf.Timestamp" if w == "Timestamp" else w) for w in words]
            lines.append(f"  {' '.join(words)} = {n};")
        lines.append("}")
    for name, values in enums.items():
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
        lines += ["", f"enum {name} {{", f"  {prefix}_UNSPECIFIED = 0;"]
        for n, v in enumerate(values, start=1):
            lines.append(f"  {prefix}_{v} = {n};")
        lines.append("}")
    return "\n".join(lines) + "\n"


def asyncapi(title, description, channels, schemas, version="1.0.0"):
    """channels: (channel, operationId, summary, message name, payload schema)"""
    refs = set()
    chans, messages = OrderedDict(), OrderedDict()
    for channel, op_id, summary, msg, payload in channels:
        chans[channel] = {"subscribe": OrderedDict([
            ("operationId", op_id), ("summary", summary),
            ("message", {"$ref": f"#/components/messages/{msg}"})])}
        messages[msg] = OrderedDict([("name", msg), ("title", titleize(re.sub(r"(?<!^)(?=[A-Z])", "-", msg).lower())),
                                     ("contentType", "application/json"),
                                     ("payload", {"$ref": f"#/components/schemas/{payload}"})])
        refs.add(payload)
    all_schemas = OrderedDict()
    for name, spec in schemas.items():
        all_schemas[name] = _object_schema(spec, refs)
    for name, spec in COMMON_SCHEMAS.items():
        if name in refs and name not in all_schemas:
            all_schemas[name] = _object_schema(spec, refs)
    missing = refs - set(all_schemas)
    assert not missing, f"{title}: undefined schemas {missing}"
    doc = OrderedDict([
        ("asyncapi", "2.6.0"),
        ("info", OrderedDict([("title", title), ("version", version), ("description", description)])),
        ("servers", {"production": OrderedDict([("url", "kafka-bootstrap.northwind.internal:9093"),
                                                ("protocol", "kafka-secure"),
                                                ("description", "Main Kafka cluster (MSK)")])}),
        ("defaultContentType", "application/json"),
        ("channels", chans),
        ("components", OrderedDict([("messages", messages), ("schemas", all_schemas)])),
    ])
    return to_yaml(doc)


# --------------------------------------------------------------------------
# APIs.  Owner and system are taken from the component that provides them.
# --------------------------------------------------------------------------

API_DEFS = OrderedDict()


def api(name, type_, description, tags, definition, lifecycle="production"):
    assert name not in API_DEFS, name
    API_DEFS[name] = (type_, description, list(tags), definition, lifecycle)


def svc(host):
    return f"https://{host}.internal.{CORP}"


# ---- platform-core
api("schema-registry-api", "openapi", "Registry of Avro and JSON schemas for every Kafka topic on the event bus.", ["rest", "kafka"],
    openapi("Schema Registry API", "Register and look up event schemas; enforces backward compatibility.", svc("schema-registry"),
            OrderedDict([("SchemaVersion", "subject string; version int32; id int32; schemaType enum(AVRO|JSON|PROTOBUF); schema string"),
                         ("RegisterSchemaRequest", "schemaType enum(AVRO|JSON|PROTOBUF); schema string"),
                         ("CompatibilityResult", "isCompatible bool; messages? [string]")]),
            [("get", "/subjects", "List subjects", "listSubjects", None, "[string]"),
             ("get", "/subjects/{subject}/versions/{version}", "Get a schema version", "getSchemaVersion", None, "SchemaVersion"),
             ("post", "/subjects/{subject}/versions", "Register a new schema version", "registerSchema", "RegisterSchemaRequest", "SchemaVersion", {"code": 201}),
             ("post", "/compatibility/subjects/{subject}/versions/latest", "Check compatibility against the latest version", "checkCompatibility", "RegisterSchemaRequest", "CompatibilityResult")]))

api("rate-limit-api", "grpc", "Distributed token-bucket rate limiting used by the API gateway and public endpoints.", ["grpc", "envoy"],
    proto("northwind.platform.ratelimit.v1", "RateLimitService", "Token bucket checks keyed by client, route and tenant.",
          [("ShouldRateLimit", "ShouldRateLimitRequest", "ShouldRateLimitResponse", "Consume tokens for each descriptor and report whether the call is allowed."),
           ("GetQuota", "GetQuotaRequest", "Quota", "Return the remaining quota for a client key.")],
          OrderedDict([("ShouldRateLimitRequest", "string domain; repeated Descriptor descriptors; uint32 hits_addend"),
                       ("Descriptor", "string key; string value"),
                       ("ShouldRateLimitResponse", "Code overall_code; repeated DescriptorStatus statuses"),
                       ("DescriptorStatus", "Code code; uint32 limit_remaining; uint32 requests_per_unit; Timestamp reset_at"),
                       ("GetQuotaRequest", "string client_key"),
                       ("Quota", "string client_key; uint32 limit; uint32 remaining; Timestamp window_ends_at")]),
          {"Code": ["OK", "OVER_LIMIT"]}))

# ---- observability
api("metrics-query-api", "openapi", "PromQL-compatible query API in front of the long-term metrics store.", ["rest", "prometheus"],
    openapi("Metrics Query API", "Instant and range PromQL queries against Mimir.", svc("metrics"),
            OrderedDict([("QueryResult", "status enum(success|error); resultType enum(matrix|vector|scalar|string); result [Series]"),
                         ("Series", "metric map; values [[number]]")]),
            [("get", "/api/v1/query", "Instant query", "instantQuery", None, "QueryResult", {"query": "query string; time? datetime"}),
             ("get", "/api/v1/query_range", "Range query", "rangeQuery", None, "QueryResult",
              {"query": "query string; start datetime; end datetime; step string"}),
             ("get", "/api/v1/labels/{label}/values", "List values of a label", "labelValues", None, "[string]")]))

api("alerts-api", "openapi", "Active alerts, acknowledgements and silences routed from Alertmanager.", ["rest", "alerting"],
    openapi("Alerts API", "Query and act on alerts across all environments.", svc("alerts"),
            OrderedDict([("Alert", "id string; service string; severity enum(critical|warning|info); status enum(firing|acknowledged|resolved); summary string; labels map; startsAt datetime; runbookUrl? uri"),
                         ("Silence", "id? string; matchers map; startsAt datetime; endsAt datetime; createdBy string; comment string")]),
            [("get", "/alerts", "List alerts", "listAlerts", None, "[Alert]", {"query": "status? enum(firing|acknowledged|resolved); service? string"}),
             ("get", "/alerts/{alertId}", "Get an alert", "getAlert", None, "Alert"),
             ("post", "/alerts/{alertId}/acknowledge", "Acknowledge an alert", "acknowledgeAlert", None, "Alert"),
             ("post", "/silences", "Create a silence", "createSilence", "Silence", "Silence", {"code": 201})]))

# ---- security
api("secrets-api", "grpc", "Short-lived credentials and application secrets backed by Vault and AWS KMS.", ["grpc", "vault"],
    proto("northwind.security.secrets.v1", "SecretsService", "Workload-identity authenticated access to secrets.",
          [("GetSecret", "GetSecretRequest", "Secret", "Read the current version of a secret the caller is entitled to."),
           ("IssueDatabaseCredentials", "IssueDatabaseCredentialsRequest", "DatabaseCredentials", "Issue a short-lived database login."),
           ("Encrypt", "CryptoRequest", "CryptoResponse", "Envelope-encrypt a payload with a named key."),
           ("Decrypt", "CryptoRequest", "CryptoResponse", "Decrypt a payload previously encrypted with Encrypt.")],
          OrderedDict([("GetSecretRequest", "string path; int32 version"),
                       ("Secret", "string path; int32 version; map<string, string> data; Timestamp rotated_at"),
                       ("IssueDatabaseCredentialsRequest", "string database; string role; int32 ttl_seconds"),
                       ("DatabaseCredentials", "string username; string password; Timestamp expires_at"),
                       ("CryptoRequest", "string key_name; bytes payload; map<string, string> context"),
                       ("CryptoResponse", "bytes payload; string key_version")])))

api("audit-log-events", "asyncapi", "Tamper-evident audit trail of privileged and customer-data access.", ["kafka", "audit", "gdpr"],
    asyncapi("Audit Log Events", "Every privileged action is published here and archived for 7 years.",
             [("security.audit-events.v1", "onAuditEvent", "An auditable action happened", "AuditEvent", "AuditEventPayload")],
             OrderedDict([("AuditEventPayload", "eventId uuid; occurredAt datetime; actor string; actorType enum(user|service|agent); action string; resource string; outcome enum(allowed|denied|error); sourceIp? string; metadata? map")])))

# ---- identity
api("auth-api", "openapi", "OAuth 2.1 / OpenID Connect endpoints for customers, staff and service accounts.", ["rest", "oauth2", "oidc"],
    openapi("Auth API", "Token issuance, revocation and user info.", f"https://auth.{CORP}",
            OrderedDict([("TokenRequest", "grant_type enum(authorization_code|refresh_token|client_credentials); code? string; redirect_uri? uri; refresh_token? string; client_id string; code_verifier? string; scope? string"),
                         ("TokenResponse", "access_token string; token_type string; expires_in int32; refresh_token? string; id_token? string; scope string"),
                         ("RevokeRequest", "token string; token_type_hint? enum(access_token|refresh_token)"),
                         ("UserInfo", "sub string; email email; email_verified bool; name? string; locale? string"),
                         ("JwkSet", "keys [object]")]),
            [("post", "/oauth2/token", "Exchange a grant for tokens", "issueToken", "TokenRequest", "TokenResponse", {"ct": "application/x-www-form-urlencoded"}),
             ("post", "/oauth2/revoke", "Revoke a token", "revokeToken", "RevokeRequest", None, {"ct": "application/x-www-form-urlencoded"}),
             ("get", "/userinfo", "Claims about the authenticated user", "getUserInfo", None, "UserInfo"),
             ("get", "/.well-known/jwks.json", "Public signing keys", "getJwks", None, "JwkSet")]))

api("authz-api", "grpc", "Low-latency token introspection and permission checks for backend services.", ["grpc", "authz"],
    proto("northwind.identity.authz.v1", "AuthzService", "Relationship-based access control (Zanzibar-style).",
          [("IntrospectToken", "IntrospectTokenRequest", "IntrospectTokenResponse", "Validate an access token and return its principal."),
           ("CheckPermission", "CheckPermissionRequest", "CheckPermissionResponse", "Check whether a principal may perform an action on a resource."),
           ("BatchCheckPermissions", "BatchCheckPermissionsRequest", "BatchCheckPermissionsResponse", "Check several permissions at once.")],
          OrderedDict([("IntrospectTokenRequest", "string token"),
                       ("IntrospectTokenResponse", "bool active; string subject; PrincipalType principal_type; repeated string scopes; Timestamp expires_at"),
                       ("CheckPermissionRequest", "string subject; string permission; string resource"),
                       ("CheckPermissionResponse", "bool allowed; string reason"),
                       ("BatchCheckPermissionsRequest", "repeated CheckPermissionRequest checks"),
                       ("BatchCheckPermissionsResponse", "repeated CheckPermissionResponse results")]),
          {"PrincipalType": ["CUSTOMER", "STAFF", "SERVICE", "AGENT"]}))

api("customer-profile-api", "openapi", "Customer profile, addresses and preferences.", ["rest", "pii", "gdpr"],
    openapi("Customer Profile API", "Read and update customer profiles. Responses contain PII.", svc("customer-profile"),
            OrderedDict([("Customer", "id uuid; email email; firstName string; lastName string; phone? string; locale string; marketingOptIn bool; createdAt datetime"),
                         ("CustomerPatch", "firstName? string; lastName? string; phone? string; locale? string"),
                         ("SavedAddress", "id uuid; label string; address Address; isDefault bool")]),
            [("get", "/customers/{customerId}", "Get a customer", "getCustomer", None, "Customer"),
             ("patch", "/customers/{customerId}", "Update a customer", "updateCustomer", "CustomerPatch", "Customer"),
             ("get", "/customers/{customerId}/addresses", "List saved addresses", "listAddresses", None, "[SavedAddress]"),
             ("post", "/customers/{customerId}/addresses", "Add an address", "addAddress", "SavedAddress", "SavedAddress", {"code": 201})]))

api("identity-events", "asyncapi", "Customer account lifecycle events.", ["kafka", "gdpr"],
    asyncapi("Identity Events", "Published by the customer profile service.",
             [("identity.customer-registered.v1", "onCustomerRegistered", "A customer created an account", "CustomerRegistered", "CustomerRegisteredPayload"),
              ("identity.customer-erased.v1", "onCustomerErased", "A customer's personal data must be erased (GDPR Art. 17)", "CustomerErased", "CustomerErasedPayload")],
             OrderedDict([("CustomerRegisteredPayload", "customerId uuid; registeredAt datetime; country country; channel enum(web|ios|android)"),
                          ("CustomerErasedPayload", "customerId uuid; requestedAt datetime; deadline datetime")])))

# ---- checkout
api("cart-api", "openapi", "Shopping cart management for web and mobile.", ["rest"],
    openapi("Cart API", "Create carts and manage line items.", svc("cart"),
            OrderedDict([("Cart", "id uuid; customerId? uuid; items [CartItem]; subtotal Money; updatedAt datetime"),
                         ("CartItem", "id uuid; sku string; quantity int32; unitPrice Money"),
                         ("AddItemRequest", "sku string; quantity int32"),
                         ("CreateCartRequest", "customerId? uuid; currency currency")]),
            [("post", "/carts", "Create a cart", "createCart", "CreateCartRequest", "Cart", {"code": 201}),
             ("get", "/carts/{cartId}", "Get a cart", "getCart", None, "Cart"),
             ("post", "/carts/{cartId}/items", "Add an item", "addCartItem", "AddItemRequest", "Cart"),
             ("delete", "/carts/{cartId}/items/{itemId}", "Remove an item", "removeCartItem", None, "Cart")]))

api("checkout-api", "openapi", "Checkout sessions: shipping, payment and order placement.", ["rest", "pci"],
    openapi("Checkout API", "Turns a cart into an order.", svc("checkout"),
            OrderedDict([("Checkout", "id uuid; cartId uuid; status enum(open|awaiting_payment|completed|expired); shippingAddress? Address; shippingMethod? string; total Money; orderId? uuid"),
                         ("StartCheckoutRequest", "cartId uuid"),
                         ("ConfirmCheckoutRequest", "paymentMethodId string; shippingMethod string; shippingAddress Address")]),
            [("post", "/checkouts", "Start a checkout from a cart", "startCheckout", "StartCheckoutRequest", "Checkout", {"code": 201}),
             ("get", "/checkouts/{checkoutId}", "Get a checkout", "getCheckout", None, "Checkout"),
             ("post", "/checkouts/{checkoutId}/confirm", "Confirm and place the order", "confirmCheckout", "ConfirmCheckoutRequest", "Checkout")]))

api("checkout-events", "asyncapi", "Checkout funnel events.", ["kafka"],
    asyncapi("Checkout Events", "Published by checkout-service.",
             [("checkout.checkout-started.v1", "onCheckoutStarted", "A checkout session was started", "CheckoutStarted", "CheckoutPayload"),
              ("checkout.checkout-completed.v1", "onCheckoutCompleted", "A checkout completed and an order was placed", "CheckoutCompleted", "CheckoutPayload")],
             OrderedDict([("CheckoutPayload", "checkoutId uuid; cartId uuid; customerId? uuid; total Money; occurredAt datetime")])))

api("promotions-api", "grpc", "Evaluates coupons and automatic promotions against a basket.", ["grpc"],
    proto("northwind.checkout.promotions.v1", "PromotionsService", "Promotion rules engine.",
          [("EvaluateBasket", "EvaluateBasketRequest", "EvaluateBasketResponse", "Apply all eligible promotions and the given coupon codes to a basket."),
           ("ValidateCoupon", "ValidateCouponRequest", "ValidateCouponResponse", "Check that a coupon code exists and is redeemable.")],
          OrderedDict([("EvaluateBasketRequest", "string customer_id; string currency; repeated BasketLine lines; repeated string coupon_codes"),
                       ("BasketLine", "string sku; int32 quantity; int64 unit_price_minor"),
                       ("EvaluateBasketResponse", "repeated AppliedPromotion applied; int64 discount_total_minor"),
                       ("AppliedPromotion", "string promotion_id; string label; int64 discount_minor"),
                       ("ValidateCouponRequest", "string code; string customer_id"),
                       ("ValidateCouponResponse", "bool valid; string reason")])))

# ---- payments
api("payments-api", "openapi", "Payment intents: authorise, capture and cancel card and wallet payments.", ["rest", "pci"],
    openapi("Payments API", "PSP-agnostic payment processing.", svc("payments"),
            OrderedDict([("PaymentIntent", "id uuid; orderId uuid; amount Money; status enum(requires_action|authorized|captured|canceled|failed); psp enum(stripe|adyen); riskScore? number; createdAt datetime"),
                         ("CreatePaymentIntentRequest", "orderId uuid; amount Money; paymentMethodId string; idempotencyKey string"),
                         ("CaptureRequest", "amount? Money")]),
            [("post", "/payment-intents", "Create and authorise a payment", "createPaymentIntent", "CreatePaymentIntentRequest", "PaymentIntent", {"code": 201}),
             ("get", "/payment-intents/{intentId}", "Get a payment intent", "getPaymentIntent", None, "PaymentIntent"),
             ("post", "/payment-intents/{intentId}/capture", "Capture an authorised payment", "capturePaymentIntent", "CaptureRequest", "PaymentIntent"),
             ("post", "/payment-intents/{intentId}/cancel", "Cancel an authorisation", "cancelPaymentIntent", None, "PaymentIntent")]))

api("payment-methods-api", "grpc", "Tokenised card and wallet storage (PCI DSS scope).", ["grpc", "pci"],
    proto("northwind.payments.methods.v1", "PaymentMethodsService", "Vault for stored payment methods. Never returns PANs.",
          [("ListPaymentMethods", "ListPaymentMethodsRequest", "ListPaymentMethodsResponse", "List a customer's stored payment methods."),
           ("TokenizeCard", "TokenizeCardRequest", "PaymentMethod", "Exchange a PSP client token for a stored payment method."),
           ("DeletePaymentMethod", "DeletePaymentMethodRequest", "DeletePaymentMethodResponse", "Remove a stored payment method.")],
          OrderedDict([("ListPaymentMethodsRequest", "string customer_id"),
                       ("ListPaymentMethodsResponse", "repeated PaymentMethod payment_methods"),
                       ("PaymentMethod", "string id; string customer_id; string brand; string last4; int32 exp_month; int32 exp_year; bool is_default"),
                       ("TokenizeCardRequest", "string customer_id; string psp_token; bool set_default"),
                       ("DeletePaymentMethodRequest", "string payment_method_id"),
                       ("DeletePaymentMethodResponse", "bool deleted")])))

api("ledger-api", "grpc", "Double-entry ledger for money movements, refunds, gift cards and loyalty points.", ["grpc", "finance"],
    proto("northwind.payments.ledger.v1", "LedgerService", "Append-only double-entry ledger.",
          [("PostTransaction", "PostTransactionRequest", "Transaction", "Post a balanced set of entries atomically (idempotent)."),
           ("GetBalance", "GetBalanceRequest", "Balance", "Current balance of an account."),
           ("ListEntries", "ListEntriesRequest", "ListEntriesResponse", "Page through entries of an account.")],
          OrderedDict([("PostTransactionRequest", "string idempotency_key; string description; repeated Entry entries"),
                       ("Entry", "string account_id; int64 amount_minor; string currency; Direction direction"),
                       ("Transaction", "string id; repeated Entry entries; Timestamp posted_at"),
                       ("GetBalanceRequest", "string account_id"),
                       ("Balance", "string account_id; int64 amount_minor; string currency; Timestamp as_of"),
                       ("ListEntriesRequest", "string account_id; int32 page_size; string page_token"),
                       ("ListEntriesResponse", "repeated Entry entries; string next_page_token")]),
          {"Direction": ["DEBIT", "CREDIT"]}))

api("refunds-api", "openapi", "Full and partial refunds against captured payments.", ["rest"],
    openapi("Refunds API", "Refund orchestration across PSPs; every refund is booked to the ledger.", svc("refunds"),
            OrderedDict([("Refund", "id uuid; orderId uuid; paymentIntentId uuid; amount Money; reason enum(return|damaged|late_delivery|goodwill|fraud|other); status enum(pending|succeeded|failed|requires_approval); requestedBy string; createdAt datetime"),
                         ("CreateRefundRequest", "orderId uuid; amount Money; reason enum(return|damaged|late_delivery|goodwill|fraud|other); note? string; idempotencyKey string")]),
            [("post", "/refunds", "Request a refund", "createRefund", "CreateRefundRequest", "Refund", {"code": 201}),
             ("get", "/refunds/{refundId}", "Get a refund", "getRefund", None, "Refund"),
             ("get", "/refunds", "List refunds for an order", "listRefunds", None, "[Refund]", {"query": "orderId uuid"})]))

api("disputes-api", "openapi", "Chargebacks and disputes raised by card networks.", ["rest", "pci"],
    openapi("Disputes API", "Track disputes and submit evidence to the PSP.", svc("disputes"),
            OrderedDict([("Dispute", "id uuid; paymentIntentId uuid; reasonCode string; amount Money; status enum(needs_response|under_review|won|lost|accepted); evidenceDueBy datetime"),
                         ("Evidence", "narrative string; trackingNumber? string; documentUrls? [uri]")]),
            [("get", "/disputes", "List disputes", "listDisputes", None, "[Dispute]", {"query": "status? enum(needs_response|under_review|won|lost|accepted)"}),
             ("get", "/disputes/{disputeId}", "Get a dispute", "getDispute", None, "Dispute"),
             ("post", "/disputes/{disputeId}/evidence", "Submit evidence", "submitEvidence", "Evidence", "Dispute"),
             ("post", "/disputes/{disputeId}/accept", "Accept the chargeback", "acceptDispute", None, "Dispute")]))

api("payment-events", "asyncapi", "Payment lifecycle events.", ["kafka", "pci"],
    asyncapi("Payment Events", "Published by payments-service, including refund payouts confirmed by the PSP.",
             [("payments.payment-captured.v1", "onPaymentCaptured", "Funds were captured", "PaymentCaptured", "PaymentPayload"),
              ("payments.payment-failed.v1", "onPaymentFailed", "Authorisation or capture failed", "PaymentFailed", "PaymentPayload"),
              ("payments.refund-succeeded.v1", "onRefundSucceeded", "A refund was paid out", "RefundSucceeded", "RefundPayload")],
             OrderedDict([("PaymentPayload", "paymentIntentId uuid; orderId uuid; amount Money; psp string; occurredAt datetime; failureCode? string"),
                          ("RefundPayload", "refundId uuid; orderId uuid; amount Money; reason string; occurredAt datetime")])))

api("fraud-scoring-api", "grpc", "Real-time fraud risk scores for payments, refunds and account changes.", ["grpc", "ml", "fraud"],
    proto("northwind.payments.fraud.v1", "FraudScoringService", "Scores events with the fraud-scoring-model; p99 under 40 ms.",
          [("ScorePayment", "ScorePaymentRequest", "RiskAssessment", "Score a payment attempt before authorisation."),
           ("ScoreRefund", "ScoreRefundRequest", "RiskAssessment", "Score a refund request."),
           ("ExplainAssessment", "ExplainAssessmentRequest", "Explanation", "Top feature attributions for a past assessment.")],
          OrderedDict([("ScorePaymentRequest", "string order_id; string customer_id; int64 amount_minor; string currency; string ip_address; string device_id; string shipping_country"),
                       ("ScoreRefundRequest", "string order_id; string customer_id; int64 amount_minor; string reason"),
                       ("RiskAssessment", "string assessment_id; double score; Decision decision; repeated string reasons; string model_version"),
                       ("ExplainAssessmentRequest", "string assessment_id"),
                       ("Explanation", "string assessment_id; map<string, double> attributions")]),
          {"Decision": ["APPROVE", "REVIEW", "DECLINE"]}))

# ---- orders
api("orders-api", "openapi", "Order placement, lookup and cancellation.", ["rest"],
    openapi("Orders API", "System of record for customer orders.", svc("orders"),
            OrderedDict([("Order", "id uuid; customerId uuid; status enum(placed|paid|fulfilling|shipped|delivered|canceled|returned); lines [OrderLine]; total Money; shippingAddress Address; placedAt datetime"),
                         ("OrderLine", "sku string; title string; quantity int32; unitPrice Money"),
                         ("PlaceOrderRequest", "checkoutId uuid; customerId uuid; lines [OrderLine]; shippingAddress Address; paymentIntentId uuid"),
                         ("CancelRequest", "reason string")]),
            [("get", "/orders", "Search orders", "listOrders", None, "[Order]", {"query": "customerId? uuid; status? string; limit? int32"}),
             ("post", "/orders", "Place an order", "placeOrder", "PlaceOrderRequest", "Order", {"code": 201}),
             ("get", "/orders/{orderId}", "Get an order", "getOrder", None, "Order"),
             ("post", "/orders/{orderId}/cancel", "Cancel an order", "cancelOrder", "CancelRequest", "Order")]))

api("order-events", "asyncapi", "Order lifecycle events consumed by fulfillment, loyalty, analytics and notifications.", ["kafka"],
    asyncapi("Order Events", "Published by order-service.",
             [("orders.order-placed.v1", "onOrderPlaced", "An order was placed", "OrderPlaced", "OrderPayload"),
              ("orders.order-status-changed.v1", "onOrderStatusChanged", "An order moved to a new status", "OrderStatusChanged", "OrderStatusPayload"),
              ("orders.order-canceled.v1", "onOrderCanceled", "An order was canceled", "OrderCanceled", "OrderStatusPayload")],
             OrderedDict([("OrderPayload", "orderId uuid; customerId uuid; total Money; lineCount int32; placedAt datetime"),
                          ("OrderStatusPayload", "orderId uuid; previousStatus string; status string; occurredAt datetime")])))

api("returns-api", "openapi", "Customer returns and return labels.", ["rest"],
    openapi("Returns API", "Start a return, print a label, track the refund.", svc("returns"),
            OrderedDict([("Return", "id uuid; orderId uuid; lines [ReturnLine]; status enum(requested|label_issued|in_transit|received|refunded|rejected); refundId? uuid"),
                         ("ReturnLine", "sku string; quantity int32; reason enum(too_small|too_large|damaged|not_as_described|changed_mind)"),
                         ("CreateReturnRequest", "orderId uuid; lines [ReturnLine]"),
                         ("Label", "carrier string; trackingNumber string; labelUrl uri")]),
            [("post", "/returns", "Start a return", "createReturn", "CreateReturnRequest", "Return", {"code": 201}),
             ("get", "/returns/{returnId}", "Get a return", "getReturn", None, "Return"),
             ("post", "/returns/{returnId}/label", "Issue a return label", "issueReturnLabel", None, "Label")]))

# ---- product catalog
api("product-catalog-api", "openapi", "Product information: titles, attributes, media and categories.", ["rest"],
    openapi("Product Catalog API", "Read and manage product information.", svc("catalog"),
            OrderedDict([("Product", "id uuid; sku string; title string; description string; brand string; categoryId string; attributes map; imageUrls [uri]; status enum(draft|active|discontinued)"),
                         ("ProductPage", "items [Product]; nextCursor? string"),
                         ("ProductUpdate", "title? string; description? string; attributes? map; status? enum(draft|active|discontinued)"),
                         ("Category", "id string; name string; parentId? string")]),
            [("get", "/products", "List or filter products", "listProducts", None, "ProductPage", {"query": "category? string; q? string; cursor? string"}),
             ("get", "/products/{productId}", "Get a product", "getProduct", None, "Product"),
             ("patch", "/products/{productId}", "Update product content", "updateProduct", "ProductUpdate", "Product"),
             ("get", "/categories", "Category tree", "listCategories", None, "[Category]")]))

api("inventory-api", "grpc", "Stock levels and reservations per SKU and warehouse.", ["grpc"],
    proto("northwind.catalog.inventory.v1", "InventoryService", "Available-to-promise stock and reservations.",
          [("GetAvailability", "GetAvailabilityRequest", "GetAvailabilityResponse", "Available quantity per SKU across warehouses."),
           ("Reserve", "ReserveRequest", "Reservation", "Reserve stock for a checkout; expires automatically."),
           ("Release", "ReleaseRequest", "Reservation", "Release a reservation.")],
          OrderedDict([("GetAvailabilityRequest", "repeated string skus; string country"),
                       ("GetAvailabilityResponse", "repeated Availability items"),
                       ("Availability", "string sku; int32 available; string warehouse_id; Timestamp next_restock"),
                       ("ReserveRequest", "string checkout_id; repeated ReservationLine lines; int32 ttl_seconds"),
                       ("ReservationLine", "string sku; int32 quantity"),
                       ("ReleaseRequest", "string reservation_id"),
                       ("Reservation", "string id; string checkout_id; repeated ReservationLine lines; Timestamp expires_at")])))

api("pricing-api", "grpc", "Prices per SKU, market and customer segment.", ["grpc"],
    proto("northwind.catalog.pricing.v1", "PricingService", "Price lists and markdowns.",
          [("GetPrices", "GetPricesRequest", "GetPricesResponse", "Current prices for a set of SKUs in a market."),
           ("GetPriceHistory", "GetPriceHistoryRequest", "GetPriceHistoryResponse", "Lowest price in the last 30 days (EU Omnibus directive).")],
          OrderedDict([("GetPricesRequest", "repeated string skus; string market; string currency"),
                       ("GetPricesResponse", "repeated Price prices"),
                       ("Price", "string sku; int64 amount_minor; string currency; int64 compare_at_minor; string price_list_id"),
                       ("GetPriceHistoryRequest", "string sku; string market"),
                       ("GetPriceHistoryResponse", "string sku; int64 lowest_30d_minor; repeated Price history")])))

api("catalog-events", "asyncapi", "Product and price change events used by search indexing and caches.", ["kafka"],
    asyncapi("Catalog Events", "Published by catalog-service.",
             [("catalog.product-upserted.v1", "onProductUpserted", "A product was created or changed", "ProductUpserted", "ProductChangedPayload"),
              ("catalog.product-discontinued.v1", "onProductDiscontinued", "A product was discontinued", "ProductDiscontinued", "ProductChangedPayload")],
             OrderedDict([("ProductChangedPayload", "productId uuid; sku string; changedFields [string]; version int; occurredAt datetime")])))

api("product-reviews-api", "openapi", "Customer ratings and reviews with moderation status.", ["rest", "ugc"],
    openapi("Product Reviews API", "Submit, read and flag product reviews.", svc("reviews"),
            OrderedDict([("Review", "id uuid; productId uuid; rating int32; title string; body string; authorDisplayName string; verifiedPurchase bool; moderation enum(pending|approved|rejected); createdAt datetime"),
                         ("NewReview", "rating int32; title string; body string"),
                         ("Flag", "reason enum(spam|offensive|off_topic|personal_data)")]),
            [("get", "/products/{productId}/reviews", "List approved reviews", "listReviews", None, "[Review]", {"query": "sort? enum(recent|helpful|rating)"}),
             ("post", "/products/{productId}/reviews", "Submit a review", "submitReview", "NewReview", "Review", {"code": 201}),
             ("post", "/reviews/{reviewId}/flags", "Flag a review", "flagReview", "Flag", None, {"code": 202, "desc": "Flag recorded"})]))

# ---- search
api("search-api", "openapi", "Product search, autocomplete and search feedback.", ["rest", "search"],
    openapi("Search API", "Hybrid keyword and vector search over the product catalog.", svc("search"),
            OrderedDict([("SearchResponse", "query string; rewrittenQuery? string; total int; hits [SearchHit]; facets [Facet]"),
                         ("SearchHit", "productId uuid; sku string; title string; score number; price Money; imageUrl? uri"),
                         ("Facet", "name string; values map"),
                         ("Suggestion", "text string; type enum(query|category|brand)"),
                         ("Feedback", "queryId string; productId uuid; action enum(click|add_to_cart|purchase)")]),
            [("get", "/search", "Search products", "searchProducts", None, "SearchResponse",
              {"query": "q string; page? int32; filters? string; sort? enum(relevance|price_asc|price_desc|newest)"}),
             ("get", "/autocomplete", "Query suggestions", "autocomplete", None, "[Suggestion]", {"query": "prefix string; limit? int32"}),
             ("post", "/feedback", "Record a search interaction", "recordFeedback", "Feedback", None, {"code": 202, "desc": "Accepted"})]))

api("recommendations-api", "grpc", "Personalised and item-to-item product recommendations.", ["grpc", "ml"],
    proto("northwind.search.recommendations.v1", "RecommendationsService", "Candidate generation with vector search, ranked by recs-ranking-model.",
          [("RecommendForCustomer", "RecommendForCustomerRequest", "Recommendations", "Home page and email recommendations for a customer."),
           ("SimilarProducts", "SimilarProductsRequest", "Recommendations", "Products similar to a given product."),
           ("FrequentlyBoughtTogether", "SimilarProductsRequest", "Recommendations", "Complementary products for the cart page.")],
          OrderedDict([("RecommendForCustomerRequest", "string customer_id; string placement; int32 limit"),
                       ("SimilarProductsRequest", "string product_id; int32 limit"),
                       ("Recommendations", "repeated Recommendation items; string model_version"),
                       ("Recommendation", "string product_id; double score; string reason")])))

# ---- fulfillment
api("shipping-api", "openapi", "Shipping quotes, shipments and tracking across carriers.", ["rest"],
    openapi("Shipping API", "Carrier-agnostic shipping.", svc("shipping"),
            OrderedDict([("QuoteRequest", "destination Address; parcels [Parcel]"),
                         ("Parcel", "weightGrams int32; lengthCm int32; widthCm int32; heightCm int32"),
                         ("Quote", "method string; carrier string; price Money; estimatedDelivery date"),
                         ("Shipment", "id uuid; orderId uuid; carrier string; trackingNumber string; status enum(label_created|in_transit|out_for_delivery|delivered|exception); estimatedDelivery? date"),
                         ("CreateShipmentRequest", "orderId uuid; method string; parcels [Parcel]"),
                         ("TrackingEvent", "at datetime; location string; status string; description string")]),
            [("post", "/quotes", "Quote shipping options", "quoteShipping", "QuoteRequest", "[Quote]"),
             ("post", "/shipments", "Create a shipment", "createShipment", "CreateShipmentRequest", "Shipment", {"code": 201}),
             ("get", "/shipments/{shipmentId}", "Get a shipment", "getShipment", None, "Shipment"),
             ("get", "/shipments/{shipmentId}/tracking", "Tracking history", "getTracking", None, "[TrackingEvent]")]))

api("warehouse-api", "grpc", "Warehouse tasks: picking, packing and stock receipts.", ["grpc"],
    proto("northwind.fulfillment.warehouse.v1", "WarehouseService", "Warehouse management for the three Northwind fulfillment centres.",
          [("CreatePickList", "CreatePickListRequest", "PickList", "Create a pick list for an order."),
           ("ConfirmPacked", "ConfirmPackedRequest", "PickList", "Mark a pick list as packed with parcel dimensions."),
           ("ReceiveStock", "ReceiveStockRequest", "ReceiveStockResponse", "Book an inbound delivery into stock.")],
          OrderedDict([("CreatePickListRequest", "string order_id; string warehouse_id"),
                       ("PickList", "string id; string order_id; string warehouse_id; PickStatus status; repeated PickLine lines"),
                       ("PickLine", "string sku; int32 quantity; string bin_location"),
                       ("ConfirmPackedRequest", "string pick_list_id; int32 parcel_count; int32 total_weight_grams"),
                       ("ReceiveStockRequest", "string warehouse_id; string purchase_order_id; repeated PickLine lines"),
                       ("ReceiveStockResponse", "int32 units_received; Timestamp received_at")]),
          {"PickStatus": ["OPEN", "PICKING", "PACKED", "SHIPPED"]}))

api("shipment-events", "asyncapi", "Shipment and delivery status changes from carriers.", ["kafka"],
    asyncapi("Shipment Events", "Published by shipping-service from carrier webhooks.",
             [("fulfillment.shipment-status-changed.v1", "onShipmentStatusChanged", "A shipment changed status", "ShipmentStatusChanged", "ShipmentPayload"),
              ("fulfillment.shipment-delivered.v1", "onShipmentDelivered", "A shipment was delivered", "ShipmentDelivered", "ShipmentPayload")],
             OrderedDict([("ShipmentPayload", "shipmentId uuid; orderId uuid; carrier string; trackingNumber string; status string; occurredAt datetime")])))

# ---- storefront / mobile (GraphQL)
api("storefront-graphql-api", "graphql", "GraphQL backend-for-frontend used by the storefront website.", ["graphql", "bff"], dedent('''
    """Storefront BFF schema. Aggregates catalog, search, cart, checkout and account data."""
    scalar DateTime
    scalar URL

    type Money {
      amountMinor: Int!
      currency: String!
      formatted: String!
    }

    type Product {
      id: ID!
      sku: String!
      title: String!
      description: String!
      brand: String
      price: Money!
      compareAtPrice: Money
      images: [URL!]!
      rating: Float
      reviewCount: Int!
      inStock: Boolean!
      recommendations(limit: Int = 8): [Product!]!
    }

    type SearchResult {
      total: Int!
      rewrittenQuery: String
      products: [Product!]!
    }

    type CartLine {
      id: ID!
      product: Product!
      quantity: Int!
      lineTotal: Money!
    }

    type Cart {
      id: ID!
      lines: [CartLine!]!
      subtotal: Money!
    }

    type Order {
      id: ID!
      status: String!
      placedAt: DateTime!
      total: Money!
      trackingUrl: URL
    }

    type Customer {
      id: ID!
      firstName: String!
      email: String!
      orders(first: Int = 10): [Order!]!
      loyaltyPoints: Int!
    }

    type AssistantReply {
      message: String!
      suggestedProducts: [Product!]!
      conversationId: ID!
    }

    type Query {
      product(id: ID!): Product
      search(query: String!, page: Int = 1): SearchResult!
      cart(id: ID!): Cart
      me: Customer
    }

    type Mutation {
      addToCart(cartId: ID, sku: String!, quantity: Int!): Cart!
      removeFromCart(cartId: ID!, lineId: ID!): Cart!
      startCheckout(cartId: ID!): URL!
      askShoppingAssistant(conversationId: ID, message: String!): AssistantReply!
    }
    '''))

api("mobile-bff-api", "graphql", "GraphQL API consumed by the iOS and Android apps.", ["graphql", "bff", "mobile"], dedent('''
    """Mobile BFF schema. Optimised for small payloads and offline-friendly pagination."""
    scalar DateTime

    type Price {
      amountMinor: Int!
      currency: String!
    }

    type ProductCard {
      id: ID!
      title: String!
      thumbnailUrl: String!
      price: Price!
      inStock: Boolean!
    }

    type ProductConnection {
      edges: [ProductCard!]!
      nextCursor: String
    }

    type OrderSummary {
      id: ID!
      status: String!
      placedAt: DateTime!
      itemCount: Int!
      total: Price!
    }

    type AppConfig {
      minSupportedVersion: String!
      featureFlags: [String!]!
      maintenanceMessage: String
    }

    type Query {
      appConfig(platform: String!, version: String!): AppConfig!
      home(cursor: String): ProductConnection!
      search(query: String!, cursor: String): ProductConnection!
      orders(cursor: String): [OrderSummary!]!
    }

    type Mutation {
      registerDevice(token: String!, platform: String!): Boolean!
      addToCart(sku: String!, quantity: Int!): Int!
      checkout(paymentMethodId: ID!): OrderSummary!
    }
    '''))

# ---- engagement
api("notifications-api", "openapi", "Send transactional email, SMS and push notifications and manage preferences.", ["rest", "gdpr"],
    openapi("Notifications API", "Template-based multi-channel notifications honouring consent.", svc("notifications"),
            OrderedDict([("SendRequest", "customerId uuid; template string; channel enum(email|sms|push|auto); variables map; idempotencyKey string"),
                         ("Notification", "id uuid; customerId uuid; template string; channel enum(email|sms|push); status enum(queued|sent|delivered|bounced|suppressed); createdAt datetime"),
                         ("Preferences", "email bool; sms bool; push bool; marketing bool; quietHours? string")]),
            [("post", "/notifications", "Send a notification", "sendNotification", "SendRequest", "Notification", {"code": 202, "desc": "Queued"}),
             ("get", "/notifications/{notificationId}", "Get delivery status", "getNotification", None, "Notification"),
             ("get", "/customers/{customerId}/preferences", "Get channel preferences", "getPreferences", None, "Preferences"),
             ("put", "/customers/{customerId}/preferences", "Replace channel preferences", "putPreferences", "Preferences", "Preferences")]))

api("email-delivery-events", "asyncapi", "Delivery, open, click and bounce events from the email provider.", ["kafka", "email"],
    asyncapi("Email Delivery Events", "Normalised webhooks from the ESP.",
             [("notifications.email-delivered.v1", "onEmailDelivered", "An email was delivered", "EmailDelivered", "EmailEventPayload"),
              ("notifications.email-bounced.v1", "onEmailBounced", "An email hard- or soft-bounced", "EmailBounced", "EmailEventPayload"),
              ("notifications.email-engaged.v1", "onEmailEngaged", "An email was opened or clicked", "EmailEngaged", "EmailEventPayload")],
             OrderedDict([("EmailEventPayload", "notificationId uuid; customerId uuid; template string; campaignId? uuid; event enum(delivered|bounced|opened|clicked); occurredAt datetime")])))

api("campaigns-api", "openapi", "Lifecycle and promotional campaigns with audience segments.", ["rest", "marketing"],
    openapi("Campaigns API", "Plan, schedule and measure campaigns.", svc("campaigns"),
            OrderedDict([("Campaign", "id uuid; name string; channel enum(email|push|sms); segment string; subject? string; body string; status enum(draft|scheduled|sending|sent|canceled); scheduledAt? datetime"),
                         ("NewCampaign", "name string; channel enum(email|push|sms); segment string; subject? string; body string"),
                         ("Schedule", "sendAt datetime; timezoneAware bool"),
                         ("CampaignStats", "sent int; delivered int; opened int; clicked int; unsubscribed int; revenue Money")]),
            [("get", "/campaigns", "List campaigns", "listCampaigns", None, "[Campaign]", {"query": "status? string"}),
             ("post", "/campaigns", "Create a draft campaign", "createCampaign", "NewCampaign", "Campaign", {"code": 201}),
             ("post", "/campaigns/{campaignId}/schedule", "Schedule a campaign", "scheduleCampaign", "Schedule", "Campaign"),
             ("get", "/campaigns/{campaignId}/stats", "Campaign performance", "getCampaignStats", None, "CampaignStats")]))

api("loyalty-api", "openapi", "Northwind Rewards: points balance, earning and redemption.", ["rest"],
    openapi("Loyalty API", "Points are booked on the ledger.", svc("loyalty"),
            OrderedDict([("Member", "customerId uuid; tier enum(bronze|silver|gold); points int; pointsExpiringNext30d int"),
                         ("EarnRequest", "orderId uuid; points int"),
                         ("RedeemRequest", "checkoutId uuid; points int")]),
            [("get", "/members/{customerId}", "Get membership", "getMember", None, "Member"),
             ("post", "/members/{customerId}/earn", "Earn points for an order", "earnPoints", "EarnRequest", "Member"),
             ("post", "/members/{customerId}/redeem", "Redeem points at checkout", "redeemPoints", "RedeemRequest", "Member")]))

api("experiments-api", "openapi", "A/B test definitions, assignments and exposure logging.", ["rest", "experimentation"],
    openapi("Experiments API", "Deterministic bucketing on top of feature flags.", svc("experiments"),
            OrderedDict([("Experiment", "key string; hypothesis string; status enum(draft|running|stopped); variants [string]; primaryMetric string; startedAt? datetime"),
                         ("Assignment", "experimentKey string; unitId string; variant string"),
                         ("Exposure", "unitId string; variant string; at datetime")]),
            [("get", "/experiments", "List experiments", "listExperiments", None, "[Experiment]"),
             ("get", "/experiments/{key}/assignment", "Get the variant for a unit", "getAssignment", None, "Assignment", {"query": "unitId string"}),
             ("post", "/experiments/{key}/exposures", "Log an exposure", "logExposure", "Exposure", None, {"code": 202, "desc": "Accepted"})]))

# ---- customer support
api("support-tickets-api", "openapi", "Customer care tickets, replies and internal notes.", ["rest", "pii"],
    openapi("Support Tickets API", "Ticketing for email, chat and phone contacts.", svc("support-tickets"),
            OrderedDict([("Ticket", "id uuid; customerId? uuid; orderId? uuid; subject string; channel enum(email|chat|phone|social); status enum(new|open|pending|solved|closed); priority enum(low|normal|high|urgent); queue string; assignee? string; createdAt datetime"),
                         ("NewTicket", "customerId? uuid; orderId? uuid; subject string; body string; channel enum(email|chat|phone|social)"),
                         ("TicketPatch", "status? enum(new|open|pending|solved|closed); priority? enum(low|normal|high|urgent); queue? string; assignee? string"),
                         ("Reply", "body string; internal bool; author string; draftedByAgent? bool")]),
            [("get", "/tickets", "List tickets", "listTickets", None, "[Ticket]", {"query": "status? string; queue? string; assignee? string"}),
             ("post", "/tickets", "Create a ticket", "createTicket", "NewTicket", "Ticket", {"code": 201}),
             ("get", "/tickets/{ticketId}", "Get a ticket", "getTicket", None, "Ticket"),
             ("patch", "/tickets/{ticketId}", "Update status, priority or assignment", "updateTicket", "TicketPatch", "Ticket"),
             ("post", "/tickets/{ticketId}/replies", "Reply or add an internal note", "addReply", "Reply", "Reply", {"code": 201})]))

api("help-center-search-api", "openapi", "Semantic search and grounded answers over help center articles.", ["rest", "rag"],
    openapi("Help Center Search API", "Used by the help center, chat widget and the support copilot.", svc("help-center-search"),
            OrderedDict([("Article", "id string; title string; url uri; locale string; updatedAt datetime; body? string"),
                         ("ArticleHit", "article Article; score number; snippet string"),
                         ("AnswerRequest", "question string; locale string; maxCitations? int32"),
                         ("Answer", "text string; citations [Article]; confidence number")]),
            [("get", "/articles/search", "Search articles", "searchArticles", None, "[ArticleHit]", {"query": "q string; locale? string"}),
             ("get", "/articles/{articleId}", "Get an article", "getArticle", None, "Article"),
             ("post", "/answers", "Answer a question with citations", "answerQuestion", "AnswerRequest", "Answer")]))

# ---- data platform / analytics
api("warehouse-query-api", "openapi", "Governed SQL access to the analytics warehouse.", ["rest", "sql"],
    openapi("Warehouse Query API", "Asynchronous SQL with row-level security and PII masking.", svc("warehouse-query"),
            OrderedDict([("QueryRequest", "sql string; warehouse? string; maxRows? int32; purpose string"),
                         ("QueryStatus", "id string; state enum(queued|running|succeeded|failed|canceled); bytesScanned? int; error? string"),
                         ("ResultPage", "columns [Column]; rows [[string]]; nextPageToken? string"),
                         ("Column", "name string; type string; masked bool")]),
            [("post", "/queries", "Submit a query", "submitQuery", "QueryRequest", "QueryStatus", {"code": 202, "desc": "Accepted"}),
             ("get", "/queries/{queryId}", "Query status", "getQuery", None, "QueryStatus"),
             ("get", "/queries/{queryId}/results", "Fetch results", "getQueryResults", None, "ResultPage", {"query": "pageToken? string"})]))

api("data-catalog-api", "openapi", "Metadata, ownership, classification and lineage of warehouse tables.", ["rest", "metadata"],
    openapi("Data Catalog API", "Discovery and governance of datasets.", svc("data-catalog"),
            OrderedDict([("DatasetInfo", "id string; name string; description string; owner string; classification enum(public|internal|confidential|restricted); columns [ColumnInfo]; updatedAt datetime"),
                         ("ColumnInfo", "name string; type string; description? string; pii bool"),
                         ("DatasetPatch", "description? string; classification? enum(public|internal|confidential|restricted); columns? [ColumnInfo]"),
                         ("Lineage", "upstream [string]; downstream [string]")]),
            [("get", "/datasets", "Search datasets", "listDatasets", None, "[DatasetInfo]", {"query": "q? string; owner? string"}),
             ("get", "/datasets/{datasetId}", "Get a dataset", "getDataset", None, "DatasetInfo"),
             ("patch", "/datasets/{datasetId}", "Update documentation and classification", "updateDataset", "DatasetPatch", "DatasetInfo"),
             ("get", "/datasets/{datasetId}/lineage", "Upstream and downstream lineage", "getLineage", None, "Lineage")]))

api("cdc-events", "asyncapi", "Debezium change data capture streams from operational Postgres databases.", ["kafka", "debezium"],
    asyncapi("CDC Events", "One topic per captured table, Debezium envelope.",
             [("cdc.orders.public.orders", "onOrdersChange", "Row changes of orders.public.orders", "OrdersRowChanged", "ChangeEnvelope"),
              ("cdc.payments.public.payment_intents", "onPaymentIntentsChange", "Row changes of payments.public.payment_intents", "PaymentIntentsRowChanged", "ChangeEnvelope"),
              ("cdc.catalog.public.products", "onProductsChange", "Row changes of catalog.public.products", "ProductsRowChanged", "ChangeEnvelope")],
             OrderedDict([("ChangeEnvelope", "op enum(c|u|d|r); before? object; after? object; source map; tsMs int")])))

api("tracking-events", "asyncapi", "Behavioural events from web and apps (page views, clicks, add-to-cart).", ["kafka", "analytics"],
    asyncapi("Tracking Events", "Collected by tracking-collector, consent-filtered.",
             [("analytics.page-viewed.v2", "onPageViewed", "A page or screen was viewed", "PageViewed", "TrackingPayload"),
              ("analytics.product-interaction.v2", "onProductInteraction", "A product was clicked, added to cart or wishlisted", "ProductInteraction", "TrackingPayload")],
             OrderedDict([("TrackingPayload", "eventId uuid; anonymousId string; customerId? uuid; sessionId string; type string; properties map; consent [string]; occurredAt datetime")])))

api("metrics-api", "graphql", "Semantic metrics layer: certified business metrics with dimensions.", ["graphql", "metrics"], dedent('''
    """Metrics layer. Every metric is defined once in dbt and served with consistent filters."""
    scalar Date

    enum Grain {
      DAY
      WEEK
      MONTH
    }

    type Metric {
      name: ID!
      description: String!
      owner: String!
      dimensions: [String!]!
    }

    type DataPoint {
      date: Date!
      value: Float!
      dimensions: [DimensionValue!]!
    }

    type DimensionValue {
      name: String!
      value: String!
    }

    input Filter {
      dimension: String!
      values: [String!]!
    }

    type Query {
      metrics: [Metric!]!
      metric(name: ID!): Metric
      series(metric: ID!, from: Date!, to: Date!, grain: Grain = DAY, groupBy: [String!], filters: [Filter!]): [DataPoint!]!
    }
    '''))

# ---- ML platform
api("feature-store-api", "grpc", "Online feature retrieval for real-time models.", ["grpc", "ml"],
    proto("northwind.ml.featurestore.v1", "FeatureStoreService", "Feast-compatible online store backed by Redis.",
          [("GetOnlineFeatures", "GetOnlineFeaturesRequest", "GetOnlineFeaturesResponse", "Fetch the latest feature values for a set of entities."),
           ("PushFeatures", "PushFeaturesRequest", "PushFeaturesResponse", "Push streaming feature values.")],
          OrderedDict([("GetOnlineFeaturesRequest", "string feature_service; repeated EntityKey entities"),
                       ("EntityKey", "string name; string value"),
                       ("GetOnlineFeaturesResponse", "repeated FeatureVector vectors"),
                       ("FeatureVector", "EntityKey entity; map<string, double> values; Timestamp event_time"),
                       ("PushFeaturesRequest", "string feature_view; repeated FeatureVector vectors"),
                       ("PushFeaturesResponse", "int32 written")])))

api("model-serving-api", "grpc", "KServe v2 inference protocol for self-hosted models.", ["grpc", "ml", "kserve"],
    proto("northwind.ml.serving.v1", "GRPCInferenceService", "Open Inference Protocol (KServe v2), trimmed to the calls we use.",
          [("ModelReady", "ModelReadyRequest", "ModelReadyResponse", "Whether a model version is loaded and ready."),
           ("ModelInfer", "ModelInferRequest", "ModelInferResponse", "Run inference.")],
          OrderedDict([("ModelReadyRequest", "string name; string version"),
                       ("ModelReadyResponse", "bool ready"),
                       ("ModelInferRequest", "string model_name; string model_version; string id; repeated InferTensor inputs"),
                       ("InferTensor", "string name; string datatype; repeated int64 shape; repeated float fp32_contents"),
                       ("ModelInferResponse", "string model_name; string model_version; string id; repeated InferTensor outputs")])))

api("llm-gateway-api", "openapi", "OpenAI-compatible gateway to every approved LLM with PII redaction, budgets and logging.", ["rest", "llm", "openai-compatible"],
    openapi("LLM Gateway API", "Single entry point for LLM calls. Routes to OpenAI, Anthropic, Vertex AI or self-hosted vLLM.", svc("llm-gateway"),
            OrderedDict([("ChatCompletionRequest", "model string; messages [ChatMessage]; temperature? number; max_tokens? int32; tools? [object]; metadata? map"),
                         ("ChatMessage", "role enum(system|user|assistant|tool); content string; name? string"),
                         ("ChatCompletion", "id string; model string; choices [Choice]; usage Usage"),
                         ("Choice", "index int32; message ChatMessage; finish_reason string"),
                         ("Usage", "prompt_tokens int32; completion_tokens int32; cost_usd number"),
                         ("ModelInfo", "id string; provider enum(openai|anthropic|vertex|self-hosted); context_window int32; max_data_classification enum(public|internal|confidential|restricted)"),
                         ("ModerationRequest", "input string"),
                         ("ModerationResult", "flagged bool; categories map")]),
            [("post", "/v1/chat/completions", "Create a chat completion", "createChatCompletion", "ChatCompletionRequest", "ChatCompletion"),
             ("get", "/v1/models", "List approved models", "listModels", None, "[ModelInfo]"),
             ("post", "/v1/moderations", "Classify unsafe content", "createModeration", "ModerationRequest", "ModerationResult")]))

api("embeddings-api", "openapi", "Text embeddings from hosted and self-hosted embedding models.", ["rest", "embeddings"],
    openapi("Embeddings API", "Batched embeddings with caching.", svc("embeddings"),
            OrderedDict([("EmbeddingRequest", "model string; input [string]; dimensions? int32"),
                         ("EmbeddingResponse", "model string; data [Embedding]; usage map"),
                         ("Embedding", "index int32; embedding [number]"),
                         ("EmbeddingModel", "id string; dimensions int32; maxInputTokens int32")]),
            [("post", "/v1/embeddings", "Embed a batch of texts", "createEmbeddings", "EmbeddingRequest", "EmbeddingResponse"),
             ("get", "/v1/embedding-models", "List embedding models", "listEmbeddingModels", None, "[EmbeddingModel]")]))

# ---- AI assistants
api("assistant-api", "openapi", "Run catalogued agents, stream their steps and approve gated tool calls.", ["rest", "agents", "llm"],
    openapi("Assistant API", "Agent runtime. Every run is traced and attributed to a catalogued agent.", svc("agent-runtime"),
            OrderedDict([("RunRequest", "input string; conversationId? string; context? map; onBehalfOf? string"),
                         ("Run", "id string; agent string; status enum(running|waiting_for_approval|completed|failed); output? string; pendingToolCall? ToolCall; createdAt datetime"),
                         ("ToolCall", "id string; tool string; arguments object; requiresApproval bool"),
                         ("Approval", "approved bool; approver string; comment? string"),
                         ("Trace", "runId string; steps [object]; totalTokens int; costUsd number")]),
            [("post", "/v1/agents/{agentName}/runs", "Start a run", "startRun", "RunRequest", "Run", {"code": 201}),
             ("get", "/v1/runs/{runId}", "Get a run", "getRun", None, "Run"),
             ("post", "/v1/runs/{runId}/approvals", "Approve or reject a pending tool call", "approveToolCall", "Approval", "Run"),
             ("get", "/v1/runs/{runId}/trace", "Full trace of a run", "getRunTrace", None, "Trace")]))

# ---- developer platform
api("feature-flags-api", "grpc", "Feature flag evaluation for backend services (OpenFeature provider).", ["grpc", "openfeature"],
    proto("northwind.devex.flags.v1", "FeatureFlagService", "Flag evaluation with targeting rules and percentage rollouts.",
          [("EvaluateFlag", "EvaluateFlagRequest", "EvaluateFlagResponse", "Evaluate one flag for a context."),
           ("EvaluateAll", "EvaluateAllRequest", "EvaluateAllResponse", "Evaluate every flag for a context (used by BFFs)."),
           ("WatchFlags", "WatchFlagsRequest", "stream FlagChanged", "Stream flag configuration changes.")],
          OrderedDict([("EvaluateFlagRequest", "string flag_key; EvaluationContext context"),
                       ("EvaluationContext", "string targeting_key; map<string, string> attributes"),
                       ("EvaluateFlagResponse", "string flag_key; string variant; string value_json; string reason"),
                       ("EvaluateAllRequest", "EvaluationContext context"),
                       ("EvaluateAllResponse", "repeated EvaluateFlagResponse flags"),
                       ("WatchFlagsRequest", "repeated string flag_keys"),
                       ("FlagChanged", "string flag_key; int64 revision; Timestamp changed_at")])))

api("ci-pipelines-api", "openapi", "Trigger and inspect CI pipeline runs.", ["rest", "ci"],
    openapi("CI Pipelines API", "Build, test and scan for every repository.", svc("ci"),
            OrderedDict([("PipelineRun", "id string; pipeline string; repository string; commitSha string; branch string; status enum(queued|running|passed|failed|canceled); startedAt? datetime; finishedAt? datetime; url uri"),
                         ("TriggerRequest", "repository string; branch string; commitSha? string; parameters? map"),
                         ("LogChunk", "step string; lines [string]; nextOffset? int")]),
            [("get", "/pipelines/{pipelineId}/runs", "List runs of a pipeline", "listRuns", None, "[PipelineRun]", {"query": "branch? string; status? string"}),
             ("post", "/pipelines/{pipelineId}/runs", "Trigger a run", "triggerRun", "TriggerRequest", "PipelineRun", {"code": 201}),
             ("get", "/runs/{runId}", "Get a run", "getRun", None, "PipelineRun"),
             ("get", "/runs/{runId}/logs", "Stream logs", "getRunLogs", None, "LogChunk", {"query": "offset? int"})]))

api("deployments-api", "openapi", "Progressive deployments and rollbacks across environments.", ["rest", "cd", "argocd"],
    openapi("Deployments API", "GitOps deployments through Argo CD with canary analysis.", svc("deployments"),
            OrderedDict([("Deployment", "id uuid; service string; environment enum(development|staging|production); version string; status enum(pending|progressing|succeeded|failed|rolled_back); strategy enum(rolling|canary|blue_green); startedBy string; startedAt datetime"),
                         ("DeployRequest", "service string; environment enum(development|staging|production); version string; strategy? enum(rolling|canary|blue_green)"),
                         ("RollbackRequest", "reason string")]),
            [("post", "/deployments", "Start a deployment", "createDeployment", "DeployRequest", "Deployment", {"code": 201}),
             ("get", "/deployments", "List recent deployments", "listDeployments", None, "[Deployment]", {"query": "service? string; environment? string; since? datetime"}),
             ("get", "/deployments/{deploymentId}", "Get a deployment", "getDeployment", None, "Deployment"),
             ("post", "/deployments/{deploymentId}/rollback", "Roll back to the previous version", "rollbackDeployment", "RollbackRequest", "Deployment")]))


# --------------------------------------------------------------------------
# Components.  Bare dependency names are components; other kinds carry their
# kind prefix (resource:, model:, agent:).  consumesApis is the union of the
# explicit `consumes` list and the primary synchronous API of every component
# dependency.
# --------------------------------------------------------------------------

COMPONENTS = OrderedDict()


def comp(system, name, type_, description, deps=(), provides=(), consumes=(), lifecycle="production",
         owner=None, lang=None, tags=(), title=None):
    assert name not in COMPONENTS, name
    COMPONENTS[name] = dict(system=system, type=type_, description=description,
                            deps=[d if ":" in d else f"component:{d}" for d in deps],
                            provides=list(provides), consumes=list(consumes), lifecycle=lifecycle,
                            owner=owner or SYSTEMS[system][1], lang=lang, tags=list(tags), title=title)


# ---- platform-core (team-cloud-infra)
S = "platform-core"
comp(S, "api-gateway", "service", "Envoy-based edge gateway: TLS termination, JWT validation, routing and rate limiting for all public traffic.",
     ["auth-service", "rate-limiter", "feature-flags", "go-service-kit"], consumes=["auth-api"], lang="go", tags=["envoy", "edge", "tier-0"])
comp(S, "event-bus", "service", "Managed Kafka platform: topic provisioning, ACLs, schema enforcement and consumer lag monitoring.",
     ["resource:kafka-main", "schema-registry", "secrets-manager"], lang="go", tags=["kafka", "tier-0"])
comp(S, "schema-registry", "service", "Confluent-compatible schema registry that enforces backward compatibility of event schemas.",
     ["resource:kafka-main"], provides=["schema-registry-api"], lang="java", tags=["kafka", "avro"])
comp(S, "rate-limiter", "service", "Global token-bucket rate limiting service for the gateway and public endpoints.",
     ["resource:rate-limit-cache", "go-service-kit"], provides=["rate-limit-api"], lang="go", tags=["envoy", "redis"])
comp(S, "go-service-kit", "library", "Opinionated Go service chassis: config, gRPC/HTTP servers, health checks, graceful shutdown.",
     ["telemetry-sdk"], lang="go", tags=["chassis"])
comp(S, "kube-platform-operator", "service", "Kubernetes operator that provisions namespaces, network policies and workload identities per service.",
     ["secrets-manager"], lang="go", tags=["kubernetes", "operator"])

# ---- observability (team-sre)
S = "observability"
comp(S, "telemetry-sdk", "library", "OpenTelemetry distribution with Northwind defaults for traces, metrics and structured logs (Go, Java, Python, TS).",
     [], lang="go", tags=["opentelemetry"])
comp(S, "metrics-gateway", "service", "Query frontend for Grafana Mimir; serves PromQL to dashboards, SLO tooling and bots.",
     ["resource:metrics-tsdb"], provides=["metrics-query-api"], lang="go", tags=["prometheus", "mimir"])
comp(S, "log-pipeline", "service", "Vector-based log shipping, PII scrubbing and routing to Loki and the archive bucket.",
     ["resource:logs-bucket", "event-bus"], lang="rust", tags=["vector", "loki"])
comp(S, "alert-router", "service", "Routes Alertmanager alerts to PagerDuty and Slack by service ownership from the catalog.",
     ["metrics-gateway"], provides=["alerts-api"], lang="go", tags=["alerting", "pagerduty"])
comp(S, "incident-bot", "service", "Slack bot that opens incident channels, pages responders and runs the incident triage agent.",
     ["agent:incident-triage-agent", "alert-router"], lang="python", tags=["slack", "incident-response", "llm"])
comp(S, "postmortem-search", "service", "Semantic search over five years of incident postmortems, used by on-call engineers and the triage agent.",
     ["embedding-service", "resource:postmortem-vectors"], lang="python", tags=["rag", "incident-response"])
comp(S, "status-page", "website", "Public status page at status.northwindlabs.com.",
     ["alert-router"], lang="typescript", tags=["nextjs"])
comp(S, "slo-tracker", "service", "Computes error budgets and burn rates for every tier-0 and tier-1 service.",
     ["metrics-gateway"], lang="go", tags=["slo"])

# ---- security (team-security)
S = "security"
comp(S, "secrets-manager", "service", "Vault cluster and broker issuing secrets and short-lived database credentials via workload identity.",
     ["resource:vault-storage"], provides=["secrets-api"], lang="go", tags=["vault", "kms", "tier-0"])
comp(S, "audit-log-service", "service", "Collects privileged-access and customer-data-access events and archives them immutably.",
     ["event-bus", "resource:audit-log-archive"], provides=["audit-log-events"], lang="go", tags=["audit", "gdpr"])
comp(S, "pii-scanner", "service", "Detects and redacts personal data in free text; used by the log pipeline and the LLM gateway.",
     ["model:pii-detection-model"], lang="python", tags=["pii", "gdpr", "ml"])
comp(S, "vulnerability-scanner", "service", "Scans container images and dependencies on every build and tracks findings to remediation.",
     ["ci-pipelines", "resource:security-findings-db"], lang="go", tags=["trivy", "sca"])

# ---- identity (team-identity)
S = "identity"
comp(S, "auth-service", "service", "OAuth 2.1 / OIDC authorization server and token introspection for customers, staff, services and agents.",
     ["secrets-manager", "mfa-service", "audit-log-service", "resource:identity-db", "resource:sessions-cache"],
     provides=["authz-api", "auth-api"], lang="go", tags=["oauth2", "oidc", "tier-0"])
comp(S, "mfa-service", "service", "TOTP, WebAuthn passkeys and SMS one-time codes.",
     ["secrets-manager", "resource:identity-db"], lang="go", tags=["webauthn", "passkeys"])
comp(S, "customer-profile-service", "service", "Customer profiles, saved addresses and account lifecycle, including GDPR erasure.",
     ["auth-service", "event-bus", "resource:customer-profiles-db"], provides=["customer-profile-api", "identity-events"],
     lang="kotlin", tags=["pii", "gdpr"])
comp(S, "consent-service", "service", "Records marketing and cookie consent and exposes it to messaging and tracking.",
     ["auth-service", "event-bus", "resource:customer-profiles-db"], lang="kotlin", tags=["gdpr", "consent"])
comp(S, "login-web", "website", "Hosted login, registration and account recovery pages.",
     ["auth-service", "design-system"], lang="typescript", tags=["react"])
comp(S, "legacy-sso-bridge", "service", "SAML bridge for the old warehouse staff portal. Being replaced by OIDC in Q3.",
     ["auth-service"], lifecycle="deprecated", lang="java", tags=["saml"])

# ---- checkout (team-checkout)
S = "checkout"
comp(S, "cart-service", "service", "Persistent shopping carts for guests and signed-in customers.",
     ["auth-service", "pricing-service", "feature-flags", "go-service-kit", "resource:carts-cache"],
     provides=["cart-api"], lang="go", tags=["redis"])
comp(S, "checkout-service", "service", "Orchestrates checkout: inventory reservation, promotions, tax, payment authorisation and order placement.",
     ["auth-service", "cart-service", "inventory-service", "promotions-service", "tax-service", "shipping-service",
      "payments-service", "order-service", "loyalty-service", "event-bus", "feature-flags", "resource:checkout-db"],
     provides=["checkout-api", "checkout-events"], lang="kotlin", tags=["saga", "tier-1"])
comp(S, "promotions-service", "service", "Coupon codes, automatic discounts and bundle pricing rules.",
     ["auth-service", "feature-flags", "resource:checkout-db"], provides=["promotions-api"], lang="kotlin", tags=["pricing"])
comp(S, "tax-service", "service", "VAT and US sales tax calculation via Avalara with an offline fallback table.",
     ["secrets-manager"], lang="kotlin", tags=["tax", "avalara"])
comp(S, "gift-card-service", "service", "Issues and redeems gift cards; balances live on the ledger.",
     ["auth-service", "ledger-service", "resource:checkout-db"], lang="kotlin", tags=["finance"])

# ---- payments (team-payments)
S = "payments"
comp(S, "payments-service", "service", "Payment intents across Stripe and Adyen with smart routing, 3-D Secure and idempotent retries.",
     ["auth-service", "payment-methods-vault", "fraud-scoring-service", "psp-adapter-stripe", "psp-adapter-adyen",
      "ledger-service", "event-bus", "secrets-manager", "resource:payments-db"],
     provides=["payments-api", "payment-events"], lang="java", tags=["pci", "tier-1"])
comp(S, "ledger-service", "service", "Double-entry ledger for all money movements; source of truth for finance reconciliation.",
     ["event-bus", "resource:ledger-db"], provides=["ledger-api"], lang="java", tags=["finance", "tier-1"])
comp(S, "payment-methods-vault", "service", "PCI DSS-scoped vault of tokenised cards and wallets.",
     ["secrets-manager", "resource:card-vault-db"], provides=["payment-methods-api"], lang="java", tags=["pci"])
comp(S, "psp-adapter-stripe", "service", "Adapter for the Stripe Payments API and webhooks.",
     ["secrets-manager"], lang="java", tags=["stripe", "pci"])
comp(S, "psp-adapter-adyen", "service", "Adapter for the Adyen Checkout API and notifications.",
     ["secrets-manager"], lang="java", tags=["adyen", "pci"])
comp(S, "refund-service", "service", "Full and partial refunds with approval thresholds; books every refund to the ledger.",
     ["auth-service", "payments-service", "ledger-service", "fraud-scoring-service", "event-bus"],
     provides=["refunds-api"], lang="java", tags=["finance"])
comp(S, "disputes-service", "service", "Chargeback intake from PSP webhooks, evidence collection and deadlines.",
     ["auth-service", "payments-service", "resource:payments-db"], provides=["disputes-api"], lang="java", tags=["chargebacks"])
comp(S, "fraud-scoring-service", "service", "Real-time fraud scoring of payments and refunds with the fraud-scoring-model and online features.",
     ["model:fraud-scoring-model", "feature-store-service", "model-serving-gateway"], provides=["fraud-scoring-api"],
     owner="team-applied-ai", lang="python", tags=["ml", "fraud", "tier-1"])
comp(S, "settlement-reconciler", "service", "Nightly reconciliation of PSP settlement reports against the ledger.",
     ["ledger-service", "resource:settlement-files-bucket"], lang="python", tags=["finance", "batch"])
comp(S, "refund-orchestrator", "service", "Routes refund requests from support and returns to the refund agent and enforces approval policies.",
     ["agent:refund-agent", "refund-service"], lifecycle="experimental", lang="python", tags=["llm", "agents"])
comp(S, "chargeback-dispute-worker", "service", "Assembles dispute evidence packs and drafts rebuttal letters with the chargeback dispute agent.",
     ["agent:chargeback-dispute-agent", "disputes-service"], lifecycle="experimental", lang="python", tags=["llm", "chargebacks"])

# ---- orders (team-orders)
S = "orders"
comp(S, "order-service", "service", "System of record for orders and their status lifecycle.",
     ["auth-service", "customer-profile-service", "event-bus", "feature-flags", "resource:orders-db"],
     provides=["orders-api", "order-events"], consumes=["payment-events", "shipment-events"], lang="kotlin", tags=["tier-1"])
comp(S, "order-history-service", "service", "Read-optimised order history for account pages and support tools.",
     ["auth-service", "resource:orders-read-replica"], consumes=["order-events"], lang="kotlin", tags=["cqrs"])
comp(S, "returns-service", "service", "Returns authorisation, labels and refund triggering.",
     ["auth-service", "order-service", "shipping-service", "refund-service", "resource:orders-db"],
     provides=["returns-api"], lang="kotlin", tags=["reverse-logistics"])
comp(S, "invoice-generator", "service", "Generates VAT-compliant PDF invoices and credit notes.",
     ["order-service", "tax-service", "resource:invoices-bucket"], consumes=["order-events"], lang="python", tags=["pdf", "finance"])
comp(S, "legacy-order-export", "service", "Nightly CSV export of orders to the old ERP. Replaced by CDC; removal planned.",
     ["resource:orders-db"], lifecycle="deprecated", lang="python", tags=["erp", "batch"])

# ---- product-catalog (team-catalog)
S = "product-catalog"
comp(S, "catalog-service", "service", "Product information management: titles, attributes, variants, categories and media links.",
     ["auth-service", "media-service", "event-bus", "resource:catalog-db"], provides=["product-catalog-api", "catalog-events"],
     lang="go", tags=["pim", "tier-1"])
comp(S, "inventory-service", "service", "Available-to-promise stock per SKU and warehouse, with checkout reservations.",
     ["event-bus", "resource:inventory-db"], provides=["inventory-api"], consumes=["order-events"], lang="go", tags=["tier-1"])
comp(S, "pricing-service", "service", "Price lists, markdowns and 30-day lowest price tracking.",
     ["catalog-service", "feature-flags", "resource:catalog-db"], provides=["pricing-api"], lang="go", tags=["pricing"])
comp(S, "media-service", "service", "Image upload, resizing and CDN URLs for product media.",
     ["resource:product-images-bucket"], lang="go", tags=["images", "cdn"])
comp(S, "review-service", "service", "Ratings and reviews with verified-purchase badges and moderation workflow.",
     ["auth-service", "review-moderation-service", "resource:catalog-db"], provides=["product-reviews-api"], lang="go", tags=["ugc"])
comp(S, "review-moderation-service", "service", "Classifies new reviews for spam, abuse and personal data before publication.",
     ["model:review-moderation-classifier", "event-bus"], owner="team-applied-ai", lang="python", tags=["ml", "trust-and-safety"])
comp(S, "catalog-admin-web", "website", "Back-office UI for merchandisers to edit products, prices and categories.",
     ["catalog-service", "pricing-service", "auth-service", "design-system"], lang="typescript", tags=["react", "back-office"])
comp(S, "catalog-enrichment-worker", "service", "Batch job that drafts product descriptions and extracts attributes with the catalog enrichment agent.",
     ["agent:catalog-enrichment-agent", "catalog-service"], lifecycle="experimental", lang="python", tags=["llm", "batch"])

# ---- search (team-search)
S = "search"
comp(S, "search-service", "service", "Hybrid BM25 and vector product search with facets, synonyms and merchandising rules.",
     ["auth-service", "query-understanding-service", "search-ranking-service", "feature-flags", "resource:search-index",
      "resource:product-vectors", "resource:search-cache"], provides=["search-api"], lang="java", tags=["opensearch", "tier-1"])
comp(S, "search-indexer", "service", "Streams catalog, price and stock changes into the search index and product vectors.",
     ["event-bus", "embedding-service", "resource:search-index", "resource:product-vectors"],
     consumes=["catalog-events", "product-catalog-api", "pricing-api"], lang="java", tags=["opensearch", "streaming"])
comp(S, "search-ranking-service", "service", "Second-stage learning-to-rank with the search reranker.",
     ["model:search-reranker", "feature-store-service", "model-serving-gateway"], lang="python", tags=["ml", "ltr"])
comp(S, "query-understanding-service", "service", "Spell correction, category prediction and LLM query rewriting for long-tail queries.",
     ["llm-gateway", "resource:search-cache"], lang="python", tags=["nlp", "llm"])
comp(S, "recommendations-service", "service", "Personalised, similar-item and frequently-bought-together recommendations.",
     ["model:recs-ranking-model", "feature-store-service", "embedding-service", "resource:product-vectors"],
     provides=["recommendations-api"], lang="python", tags=["ml", "recsys"])
comp(S, "semantic-search-service", "service", "Natural-language search answers ('a tent for 4 people under 300 euros') with cited products.",
     ["embedding-service", "llm-gateway", "resource:product-vectors"], lifecycle="experimental", lang="python", tags=["rag", "llm"])

# ---- fulfillment (team-fulfillment)
S = "fulfillment"
comp(S, "shipping-service", "service", "Shipping quotes, label creation and tracking across DHL, UPS, DPD and USPS.",
     ["auth-service", "carrier-gateway", "event-bus", "resource:fulfillment-db"], provides=["shipping-api", "shipment-events"],
     lang="go", tags=["carriers", "tier-1"])
comp(S, "carrier-gateway", "service", "Normalises carrier APIs and webhooks behind one interface.",
     ["secrets-manager"], lang="go", tags=["carriers", "integrations"])
comp(S, "warehouse-service", "service", "Warehouse management: pick lists, packing and inbound stock receipts.",
     ["inventory-service", "event-bus", "resource:fulfillment-db"], provides=["warehouse-api"], consumes=["order-events"],
     lang="go", tags=["wms"])
comp(S, "pick-pack-app", "website", "Handheld-scanner web app for warehouse pickers and packers.",
     ["warehouse-service", "auth-service", "design-system"], lang="typescript", tags=["pwa", "warehouse"])
comp(S, "delivery-tracking-service", "service", "Customer-facing delivery tracking and proactive delay notifications.",
     ["shipping-service", "notification-service"], consumes=["shipment-events"], lang="go", tags=["tracking"])

# ---- storefront (team-web)
S = "storefront"
comp(S, "storefront-web", "website", "The Northwind shop at shop.northwindlabs.com (Next.js, server-side rendered).",
     ["storefront-bff", "design-system", "support-chat-widget", "feature-flags-sdk", "web-analytics-sdk"], lang="typescript", tags=["nextjs", "react", "tier-1"])
comp(S, "storefront-bff", "service", "GraphQL backend-for-frontend aggregating catalog, search, cart, checkout and account data.",
     ["api-gateway", "catalog-service", "pricing-service", "inventory-service", "search-service", "recommendations-service",
      "cart-service", "checkout-service", "order-history-service", "customer-profile-service", "review-service",
      "returns-service", "loyalty-service", "shopping-assistant-service", "feature-flags"],
     provides=["storefront-graphql-api"], lang="typescript", tags=["graphql", "apollo", "tier-1"])
comp(S, "shopping-assistant-service", "service", "Conversational shopping assistant on product and search pages, backed by the shopping assistant agent.",
     ["agent:shopping-assistant-agent", "agent-runtime", "auth-service"], lifecycle="experimental", lang="typescript", tags=["llm", "agents"])
comp(S, "design-system", "library", "Lantern, the Northwind design system: React components, tokens and accessibility guidelines.",
     [], owner="team-design-system", lang="typescript", tags=["react", "accessibility"], title="Lantern Design System")

# ---- mobile-app (team-mobile)
S = "mobile-app"
comp(S, "mobile-bff", "service", "GraphQL BFF for the iOS and Android apps.",
     ["api-gateway", "catalog-service", "search-service", "cart-service", "checkout-service", "order-history-service",
      "customer-profile-service", "mobile-config-service"], provides=["mobile-bff-api"], lang="kotlin", tags=["graphql", "tier-1"])
comp(S, "mobile-config-service", "service", "Remote config, minimum app versions and kill switches for the apps.",
     ["feature-flags"], lang="kotlin", tags=["remote-config"])
comp(S, "mobile-push-service", "service", "Device token registry and APNs/FCM delivery.",
     ["secrets-manager", "resource:notifications-db"], owner="team-notifications", lang="go", tags=["apns", "fcm"])
comp(S, "ios-ui-kit", "library", "SwiftUI implementation of the Lantern design system used by the iOS app.",
     ["design-system"], lang="swift", tags=["swiftui"], title="iOS UI Kit")
comp(S, "android-ui-kit", "library", "Jetpack Compose implementation of the Lantern design system used by the Android app.",
     ["design-system"], lang="kotlin", tags=["jetpack-compose"])

# ---- engagement (team-growth, team-notifications)
S = "engagement"
comp(S, "notification-service", "service", "Template rendering and channel selection for transactional messages, honouring consent and quiet hours.",
     ["auth-service", "consent-service", "email-sender", "sms-sender", "mobile-push-service", "event-bus", "resource:notifications-db"],
     provides=["notifications-api"], consumes=["order-events", "shipment-events", "identity-events"], owner="team-notifications", lang="go", tags=["tier-1"])
comp(S, "email-sender", "service", "Sends email via Amazon SES with per-domain reputation management.",
     ["secrets-manager", "resource:notifications-queue"], provides=["email-delivery-events"], owner="team-notifications",
     lang="go", tags=["ses", "email"])
comp(S, "sms-sender", "service", "Sends SMS via Twilio with per-country sender IDs.",
     ["secrets-manager", "resource:notifications-queue"], owner="team-notifications", lang="go", tags=["twilio", "sms"])
comp(S, "campaign-service", "service", "Lifecycle and promotional campaigns with audience segments from the warehouse.",
     ["auth-service", "notification-service", "warehouse-query-service", "resource:growth-db"], provides=["campaigns-api"],
     consumes=["email-delivery-events"], lang="typescript", tags=["marketing"])
comp(S, "loyalty-service", "service", "Northwind Rewards: tiers, points earning and redemption.",
     ["auth-service", "ledger-service", "event-bus", "resource:growth-db"], provides=["loyalty-api"], consumes=["order-events"],
     lang="typescript", tags=["loyalty"])
comp(S, "experiments-service", "service", "Experiment definitions, deterministic assignment and exposure logging on top of feature flags.",
     ["feature-flags", "resource:growth-db"], provides=["experiments-api"], lang="go", tags=["ab-testing"])
comp(S, "churn-scoring-job", "service", "Weekly churn propensity scores for every active customer, used for win-back campaigns.",
     ["model:churn-prediction-model", "feature-store-service", "ml-sdk"], owner="team-applied-ai", lang="python", tags=["ml", "batch"])
comp(S, "marketing-copy-worker", "service", "Generates localized subject lines and email copy variants with the marketing copy agent.",
     ["agent:marketing-copy-agent", "campaign-service"], lifecycle="experimental", lang="python", tags=["llm", "marketing"])
comp(S, "marketing-site", "website", "Brand and editorial site (journal, guides, store locator).",
     ["design-system", "experiments-service", "web-analytics-sdk"], lang="typescript", tags=["nextjs", "cms"])

# ---- customer-support (team-support-tools)
S = "customer-support"
comp(S, "support-console", "website", "Agent console for customer care with the AI copilot side panel.",
     ["agent:support-copilot-agent", "support-ticket-service", "order-history-service", "customer-profile-service",
      "auth-service", "design-system"], lang="typescript", tags=["react", "back-office", "llm"])
comp(S, "support-ticket-service", "service", "Tickets from email, chat and phone with SLAs and queue routing.",
     ["auth-service", "ticket-router", "event-bus", "resource:tickets-db"], provides=["support-tickets-api"],
     lang="kotlin", tags=["ticketing", "pii"])
comp(S, "ticket-router", "service", "Predicts queue, language and urgency of incoming tickets.",
     ["model:ticket-routing-classifier", "model-serving-gateway"], owner="team-applied-ai", lang="python", tags=["ml"])
comp(S, "help-center-web", "website", "Customer help center at help.northwindlabs.com.",
     ["help-center-search", "design-system"], lang="typescript", tags=["nextjs"])
comp(S, "help-center-search", "service", "Semantic article search and grounded answers for the help center and chat widget.",
     ["embedding-service", "llm-gateway", "resource:knowledge-base-vectors"], provides=["help-center-search-api"],
     lang="python", tags=["rag"])
comp(S, "support-chat-widget", "library", "Embeddable chat widget for the storefront and apps, handing over to human agents.",
     ["design-system"], lang="typescript", tags=["chat"])
comp(S, "kb-sync", "service", "Syncs help center articles and macros into the knowledge base vector index.",
     ["embedding-service", "resource:knowledge-base-vectors"], lang="python", tags=["rag", "batch"], title="Knowledge Base Sync")

# ---- data-platform (team-data-eng)
S = "data-platform"
comp(S, "cdc-connector", "service", "Debezium connectors streaming Postgres changes from operational databases to Kafka.",
     ["event-bus", "secrets-manager"], provides=["cdc-events"], lang="java", tags=["debezium", "kafka-connect"])
comp(S, "lakehouse-ingestion", "service", "Flink jobs landing Kafka topics into Iceberg tables on S3.",
     ["event-bus", "schema-registry", "resource:lakehouse-bucket"],
     consumes=["cdc-events", "tracking-events", "order-events", "payment-events", "checkout-events", "identity-events"],
     lang="java", tags=["flink", "iceberg"])
comp(S, "workflow-orchestrator", "service", "Airflow deployment scheduling all batch data and ML pipelines.",
     ["secrets-manager", "resource:orchestrator-db"], lang="python", tags=["airflow"])
comp(S, "dbt-transformations", "service", "dbt project building the staging, core and mart layers of the warehouse.",
     ["workflow-orchestrator", "resource:analytics-warehouse"], lang="python", tags=["dbt", "sql"])
comp(S, "warehouse-query-service", "service", "Governed SQL gateway to the warehouse with row-level security and PII masking.",
     ["auth-service", "resource:analytics-warehouse"], provides=["warehouse-query-api"], lang="go", tags=["sql", "trino"])
comp(S, "data-catalog-service", "service", "DataHub-based catalog of tables, owners, classifications and lineage.",
     ["auth-service", "resource:orchestrator-db"], provides=["data-catalog-api"], lang="java", tags=["datahub", "metadata"])
comp(S, "data-quality-monitor", "service", "Freshness, volume and schema checks on critical tables, alerting owners.",
     ["warehouse-query-service", "alert-router"], lang="python", tags=["data-quality"])

# ---- analytics (team-analytics)
S = "analytics"
comp(S, "metrics-service", "service", "Semantic metrics layer serving certified business metrics.",
     ["warehouse-query-service"], provides=["metrics-api"], lang="python", tags=["metrics-layer"])
comp(S, "tracking-collector", "service", "First-party collector for web and app behavioural events; enforces consent.",
     ["event-bus", "consent-service"], provides=["tracking-events"], lang="go", tags=["tracking", "gdpr"])
comp(S, "web-analytics-sdk", "library", "Browser SDK for first-party tracking with consent-mode support.",
     [], lang="typescript", tags=["tracking"], title="Web Analytics SDK")
comp(S, "bi-dashboards", "website", "Superset instance with certified business dashboards.",
     ["warehouse-query-service", "auth-service"], lang="python", tags=["superset", "bi"], title="BI Dashboards")
comp(S, "analytics-copilot", "website", "Ask questions about business metrics in plain English; answers cite the SQL used.",
     ["agent:analytics-copilot-agent", "metrics-service", "auth-service"], lifecycle="experimental", lang="typescript", tags=["llm", "text-to-sql"])

# ---- ml-platform (team-ml-platform)
S = "ml-platform"
comp(S, "feature-store-service", "service", "Online and offline feature store (Feast) for real-time and batch models.",
     ["resource:feature-store-online", "resource:lakehouse-bucket"], provides=["feature-store-api"], lang="python", tags=["feast", "tier-1"])
comp(S, "model-serving-gateway", "service", "KServe-based serving of self-hosted models with canary rollouts and shadow traffic.",
     ["resource:model-artifacts-bucket"], provides=["model-serving-api"], lang="go", tags=["kserve", "gpu"])
comp(S, "llm-gateway", "service", "Single gateway to approved LLMs: routing, PII redaction, budgets, caching and request logging.",
     ["model:openai-gpt-4o", "model:anthropic-claude-sonnet", "model:anthropic-claude-haiku", "model:vertex-gemini-pro",
      "model:llama-3-1-8b-support", "pii-scanner", "secrets-manager", "model-serving-gateway", "resource:llm-semantic-cache"],
     provides=["llm-gateway-api"], lang="python", tags=["llm", "litellm", "tier-1"], title="LLM Gateway")
comp(S, "embedding-service", "service", "Batched text embeddings from hosted and self-hosted embedding models.",
     ["model:product-embedding-model", "model:bge-m3-embedding", "model:openai-text-embedding-3-large", "model-serving-gateway",
      "secrets-manager"], provides=["embeddings-api"], lang="python", tags=["embeddings"])
comp(S, "training-pipelines", "service", "Kubeflow pipelines for training, evaluating and registering models.",
     ["feature-store-service", "workflow-orchestrator", "ml-sdk", "resource:model-artifacts-bucket", "resource:lakehouse-bucket"],
     lang="python", tags=["kubeflow", "gpu"])
comp(S, "ml-experiment-tracker", "website", "MLflow tracking server and model registry.",
     ["auth-service", "resource:mlflow-db", "resource:model-artifacts-bucket"], lang="python", tags=["mlflow"], title="ML Experiment Tracker")
comp(S, "llm-eval-harness", "service", "Offline and CI evaluation of prompts and agents against golden datasets.",
     ["llm-gateway", "resource:mlflow-db"], lifecycle="experimental", lang="python", tags=["llm", "evals"], title="LLM Eval Harness")
comp(S, "ml-sdk", "library", "Python SDK for features, training, registry and serving.",
     [], lang="python", tags=["sdk"], title="ML SDK")

# ---- ai-assistants (team-applied-ai)
S = "ai-assistants"
comp(S, "agent-runtime", "service", "Executes catalogued agents: tool calling, memory, approvals, tracing and cost attribution.",
     ["llm-gateway", "embedding-service", "prompt-registry", "guardrails-service", "tool-broker",
      "resource:agent-memory-vectors", "resource:agent-platform-db"], provides=["assistant-api"], lang="python", tags=["agents", "llm"])
comp(S, "prompt-registry", "service", "Versioned prompt templates with evaluation gates and rollout per environment.",
     ["resource:agent-platform-db"], lang="python", tags=["prompts"])
comp(S, "guardrails-service", "service", "Input and output guardrails: prompt-injection detection, PII redaction and topic policies.",
     ["pii-scanner", "llm-gateway"], lang="python", tags=["safety", "llm"])
comp(S, "tool-broker", "service", "Gives agents scoped, audited access to internal APIs using short-lived agent credentials.",
     ["auth-service", "api-gateway", "audit-log-service"], lang="go", tags=["agents", "authz"])
comp(S, "agent-trace-viewer", "website", "Inspect agent runs step by step, with token usage, cost and human feedback.",
     ["agent-runtime", "auth-service"], lang="typescript", tags=["observability", "llm"])
comp(S, "rag-ingestion-worker", "service", "Chunks, embeds and indexes internal documents for agent retrieval.",
     ["embedding-service", "resource:agent-memory-vectors"], lang="python", tags=["rag", "batch"], title="RAG Ingestion Worker")

# ---- developer-platform (team-developer-experience)
S = "developer-platform"
comp(S, "feature-flags", "service", "OpenFeature-compatible flag service with targeting, percentage rollouts and audit history.",
     ["resource:flags-db"], provides=["feature-flags-api"], lang="go", tags=["openfeature", "tier-0"])
comp(S, "feature-flags-sdk", "library", "OpenFeature providers for Go, Java, Kotlin, Python and TypeScript.",
     [], lang="typescript", tags=["openfeature", "sdk"], title="Feature Flags SDK")
comp(S, "ci-pipelines", "service", "Build and test runners for every repository (GitHub Actions runners on Kubernetes).",
     ["secrets-manager", "resource:ci-artifacts-bucket"], provides=["ci-pipelines-api"], lang="go", tags=["ci", "github-actions"], title="CI Pipelines")
comp(S, "deploy-orchestrator", "service", "GitOps deployments through Argo CD with automated canary analysis.",
     ["ci-pipelines", "kube-platform-operator", "metrics-gateway"], provides=["deployments-api"], lang="go", tags=["argocd", "cd"])
comp(S, "developer-portal", "website", "Plinth, the internal developer portal and software catalogue you are looking at.",
     ["auth-service"], lang="rust", tags=["plinth", "catalog"])
comp(S, "code-review-bot", "service", "GitHub App that posts AI review comments and PR summaries via the code review agent.",
     ["agent:code-review-agent", "ci-pipelines"], lang="python", tags=["github", "llm"])
comp(S, "service-templates", "library", "Golden-path templates for Go, Kotlin, Python and TypeScript services.",
     ["go-service-kit", "telemetry-sdk", "feature-flags-sdk"], lang="python", tags=["scaffolding"])


# --------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------

RESOURCES = OrderedDict()


def res(system, name, type_, description, tags=(), deps=(), owner=None, region="eu-west-1", title=None):
    assert name not in RESOURCES, name
    RESOURCES[name] = dict(system=system, type=type_, description=description, tags=list(tags),
                           deps=[d if ":" in d else f"resource:{d}" for d in deps],
                           owner=owner or SYSTEMS[system][1], region=region, title=title)


res("platform-core", "kafka-main", "queue", "Main Amazon MSK cluster (Kafka 3.6), 9 brokers across 3 AZs.", ["kafka", "msk"])
res("platform-core", "rate-limit-cache", "cache", "ElastiCache Redis cluster holding rate-limit buckets.", ["redis", "elasticache"])
res("observability", "metrics-tsdb", "database", "Grafana Mimir long-term metrics storage (13 months retention).", ["mimir", "prometheus"])
res("observability", "logs-bucket", "bucket", "S3 bucket for log archives, 90 days hot in Loki, 1 year cold.", ["s3", "loki"])
res("observability", "postmortem-vectors", "vector-database", "pgvector index of incident postmortems and runbooks.", ["pgvector", "postgres", "rag"])
res("security", "vault-storage", "database", "Raft-replicated storage for the Vault cluster.", ["vault", "raft"])
res("security", "audit-log-archive", "bucket", "S3 Object Lock bucket holding audit logs for 7 years.", ["s3", "object-lock", "compliance"])
res("security", "security-findings-db", "database", "Postgres database of vulnerability findings and exceptions.", ["postgres"])
res("identity", "identity-db", "database", "Aurora Postgres cluster for credentials, clients, grants and MFA factors.", ["postgres", "aurora", "tier-0"])
res("identity", "sessions-cache", "cache", "Redis cluster for sessions and refresh-token rotation state.", ["redis", "elasticache"])
res("identity", "customer-profiles-db", "database", "Aurora Postgres cluster for customer profiles, addresses and consent records.", ["postgres", "aurora", "pii"])
res("checkout", "checkout-db", "database", "Postgres database for checkout sessions, promotions and gift cards.", ["postgres", "aurora"])
res("checkout", "carts-cache", "cache", "Redis cluster holding active carts (30 day TTL).", ["redis", "elasticache"])
res("payments", "payments-db", "database", "Aurora Postgres cluster for payment intents and disputes (PCI DSS scope).", ["postgres", "aurora", "pci"])
res("payments", "ledger-db", "database", "Aurora Postgres cluster for ledger accounts and entries.", ["postgres", "aurora", "finance"])
res("payments", "card-vault-db", "database", "Encrypted database of PSP card tokens (PCI DSS scope, HSM-backed keys).", ["postgres", "pci", "hsm"])
res("payments", "settlement-files-bucket", "bucket", "S3 bucket receiving daily PSP settlement reports.", ["s3", "finance"])
res("orders", "orders-db", "database", "Aurora Postgres cluster, system of record for orders and returns.", ["postgres", "aurora", "tier-1"])
res("orders", "orders-read-replica", "database", "Cross-region read replica of orders-db used for order history.", ["postgres", "aurora", "replica"],
    deps=["orders-db"], region="us-east-1")
res("orders", "invoices-bucket", "bucket", "S3 bucket for generated invoices and credit notes (10 years retention).", ["s3", "finance"])
res("product-catalog", "catalog-db", "database", "Postgres database for products, prices, categories and reviews.", ["postgres", "aurora"])
res("product-catalog", "inventory-db", "database", "DynamoDB tables for stock levels and reservations.", ["dynamodb"])
res("product-catalog", "product-images-bucket", "bucket", "S3 bucket with original and resized product images behind CloudFront.", ["s3", "cloudfront"])
res("search", "search-index", "database", "Amazon OpenSearch domain with the product search index.", ["opensearch"])
res("search", "product-vectors", "vector-database", "Qdrant collection of product embeddings for semantic search and recommendations.", ["qdrant", "embeddings"])
res("search", "search-cache", "cache", "Redis cache for query rewrites and hot search results.", ["redis"])
res("fulfillment", "fulfillment-db", "database", "Postgres database for shipments, pick lists and warehouse stock locations.", ["postgres", "aurora"])
res("engagement", "notifications-db", "database", "Postgres database for notification log, preferences and device tokens.", ["postgres", "pii"],
    owner="team-notifications")
res("engagement", "notifications-queue", "queue", "SQS queues for outbound email and SMS with dead-letter queues.", ["sqs"], owner="team-notifications")
res("engagement", "growth-db", "database", "Postgres database for campaigns, loyalty accounts and experiments.", ["postgres"])
res("customer-support", "tickets-db", "database", "Postgres database for tickets, replies and SLAs.", ["postgres", "pii"])
res("customer-support", "knowledge-base-vectors", "vector-database", "pgvector index of help center articles and support macros.", ["pgvector", "postgres", "rag"])
res("data-platform", "lakehouse-bucket", "bucket", "S3 data lake with Iceberg tables (raw, staging, curated zones).", ["s3", "iceberg"])
res("data-platform", "analytics-warehouse", "database", "Snowflake account holding the modelled warehouse.", ["snowflake"], deps=["lakehouse-bucket"])
res("data-platform", "orchestrator-db", "database", "Postgres metadata database for Airflow and DataHub.", ["postgres"])
res("ml-platform", "feature-store-online", "cache", "Redis cluster serving online features.", ["redis", "feast"])
res("ml-platform", "model-artifacts-bucket", "bucket", "S3 bucket for model artifacts and training checkpoints.", ["s3"])
res("ml-platform", "mlflow-db", "database", "Postgres backend store for MLflow runs and the model registry.", ["postgres", "mlflow"])
res("ml-platform", "llm-semantic-cache", "cache", "Redis cache of LLM responses keyed by prompt hash and embedding similarity.", ["redis", "llm"], title="LLM Semantic Cache")
res("ai-assistants", "agent-memory-vectors", "vector-database", "pgvector store for agent long-term memory and internal document retrieval.", ["pgvector", "postgres", "rag"])
res("ai-assistants", "agent-platform-db", "database", "Postgres database for agent runs, traces, approvals and prompt versions.", ["postgres"])
res("developer-platform", "flags-db", "database", "Postgres database for flag definitions, targeting rules and audit history.", ["postgres"])
res("developer-platform", "ci-artifacts-bucket", "bucket", "S3 bucket for build caches, test reports and SBOMs.", ["s3", "sbom"], title="CI Artifacts Bucket")


# --------------------------------------------------------------------------
# AI: models, datasets, prompts, agents  (apiVersion plinth.dev/v1alpha1)
# --------------------------------------------------------------------------

# name -> (system, owner, type, provider, license, riskTier, dataClassification, trainedOn, modelCard, lifecycle, description, tags)
MODELS = OrderedDict([
    ("openai-gpt-4o", ("ml-platform", "team-ml-platform", "llm", "openai", "proprietary", "limited", "confidential", [],
                       "https://openai.com/index/gpt-4o-system-card/", "production",
                       "OpenAI GPT-4o via Azure OpenAI (EU data zone, zero data retention).", ["llm", "hosted"])),
    ("openai-text-embedding-3-large", ("ml-platform", "team-ml-platform", "embedding", "openai", "proprietary", "minimal", "internal", [],
                                       "https://platform.openai.com/docs/models/text-embedding-3-large", "production",
                                       "OpenAI text-embedding-3-large (3072 dimensions, truncated to 1024).", ["embeddings", "hosted"])),
    ("anthropic-claude-sonnet", ("ml-platform", "team-ml-platform", "llm", "anthropic", "proprietary", "limited", "confidential", [],
                                 "https://docs.anthropic.com/en/docs/about-claude/models", "production",
                                 "Anthropic Claude Sonnet via Amazon Bedrock (eu-central-1). Default model for agents.", ["llm", "hosted", "bedrock"])),
    ("anthropic-claude-haiku", ("ml-platform", "team-ml-platform", "llm", "anthropic", "proprietary", "limited", "confidential", [],
                                "https://docs.anthropic.com/en/docs/about-claude/models", "production",
                                "Anthropic Claude Haiku via Amazon Bedrock; low-latency summarisation and extraction.", ["llm", "hosted", "bedrock"])),
    ("vertex-gemini-pro", ("ml-platform", "team-ml-platform", "llm", "vertex", "proprietary", "limited", "internal", [],
                           "https://cloud.google.com/vertex-ai/generative-ai/docs/models", "production",
                           "Google Gemini Pro on Vertex AI (europe-west4), used for marketing and long-context tasks.", ["llm", "hosted"])),
    ("llama-3-1-8b-support", ("ai-assistants", "team-applied-ai", "llm", "self-hosted", "llama3", "limited", "confidential",
                              ["dataset:support-tickets-2023", "dataset:help-center-articles"],
                              "https://mlflow.northwindlabs.com/#/models/llama-3-1-8b-support", "production",
                              "Llama 3.1 8B Instruct fine-tuned (LoRA) on resolved support conversations; served on vLLM.", ["llm", "fine-tuned", "vllm"])),
    ("bge-m3-embedding", ("ml-platform", "team-ml-platform", "embedding", "self-hosted", "mit", "minimal", "confidential", [],
                          "https://huggingface.co/BAAI/bge-m3", "production",
                          "BAAI bge-m3 multilingual embeddings, self-hosted so confidential text never leaves our VPC.", ["embeddings", "multilingual"])),
    ("product-embedding-model", ("search", "team-search", "embedding", "self-hosted", "proprietary", "minimal", "internal",
                                 ["dataset:product-catalog-snapshots", "dataset:search-clickstream"],
                                 "https://mlflow.northwindlabs.com/#/models/product-embedding-model", "production",
                                 "Two-tower product/query embedding model contrastively trained on search clicks.", ["embeddings", "two-tower"])),
    ("search-reranker", ("search", "team-search", "reranker", "self-hosted", "apache-2.0", "minimal", "internal",
                         ["dataset:search-relevance-judgments", "dataset:search-clickstream"],
                         "https://mlflow.northwindlabs.com/#/models/search-reranker", "production",
                         "Cross-encoder reranker fine-tuned from an Apache-2.0 MiniLM checkpoint on relevance judgments.", ["ltr", "cross-encoder"])),
    ("recs-ranking-model", ("search", "team-applied-ai", "reranker", "self-hosted", "proprietary", "limited", "confidential",
                            ["dataset:order-history", "dataset:search-clickstream", "dataset:customer-features"],
                            "https://mlflow.northwindlabs.com/#/models/recs-ranking-model", "production",
                            "Gradient-boosted ranker ordering recommendation candidates by purchase propensity.", ["recsys", "xgboost"])),
    ("fraud-scoring-model", ("payments", "team-applied-ai", "classifier", "self-hosted", "proprietary", "high", "restricted",
                             ["dataset:transactions-2024", "dataset:chargebacks-2023", "dataset:customer-features"],
                             "https://mlflow.northwindlabs.com/#/models/fraud-scoring-model", "production",
                             "Gradient-boosted fraud classifier for payments and refunds; decisions are reviewable and explainable.", ["fraud", "xgboost", "pci"])),
    ("ticket-routing-classifier", ("customer-support", "team-applied-ai", "classifier", "self-hosted", "proprietary", "minimal", "confidential",
                                   ["dataset:support-tickets-2023"],
                                   "https://mlflow.northwindlabs.com/#/models/ticket-routing-classifier", "production",
                                   "Predicts queue, language and urgency of incoming tickets.", ["nlp", "routing"])),
    ("churn-prediction-model", ("engagement", "team-applied-ai", "classifier", "self-hosted", "proprietary", "limited", "confidential",
                                ["dataset:customer-features", "dataset:order-history", "dataset:marketing-email-events"],
                                "https://mlflow.northwindlabs.com/#/models/churn-prediction-model", "production",
                                "90-day churn propensity per customer for win-back campaigns.", ["churn", "lightgbm"])),
    ("review-moderation-classifier", ("product-catalog", "team-applied-ai", "classifier", "self-hosted", "apache-2.0", "limited", "internal",
                                      ["dataset:product-reviews"],
                                      "https://mlflow.northwindlabs.com/#/models/review-moderation-classifier", "production",
                                      "Multilingual classifier for spam, abuse and personal data in product reviews.", ["trust-and-safety", "nlp"])),
    ("pii-detection-model", ("security", "team-security", "classifier", "self-hosted", "apache-2.0", "minimal", "restricted",
                             ["dataset:pii-annotations"],
                             "https://mlflow.northwindlabs.com/#/models/pii-detection-model", "production",
                             "Token-classification model detecting names, emails, phone numbers, addresses and card numbers.", ["pii", "ner", "gdpr"])),
])

# name -> (system, owner, type, dataClassification, residency, containsPii, lifecycle, description, tags)
DATASETS = OrderedDict([
    ("transactions-2024", ("payments", "team-payments", "table", "restricted", ["eu-west-1", "us-east-1"], True, "production",
                           "All payment attempts in 2024 with outcome, device and risk signals (card data tokenised).", ["pci", "fraud"])),
    ("chargebacks-2023", ("payments", "team-payments", "table", "confidential", ["eu-west-1"], True, "production",
                          "Chargebacks and dispute outcomes 2021-2023, labelled by fraud analysts.", ["fraud", "labels"])),
    ("customer-features", ("ml-platform", "team-ml-platform", "features", "confidential", ["eu-west-1", "us-east-1"], True, "production",
                           "Customer-level features (tenure, order frequency, return rate, support contacts) in the feature store.", ["feast"])),
    ("order-history", ("data-platform", "team-data-eng", "table", "confidential", ["eu-west-1"], True, "production",
                       "Curated order lines since 2019 in the warehouse core layer.", ["snowflake", "core"])),
    ("search-clickstream", ("search", "team-search", "events", "internal", ["eu-west-1"], True, "production",
                            "Search impressions, clicks and add-to-carts with pseudonymous session IDs.", ["clickstream"])),
    ("search-relevance-judgments", ("search", "team-search", "table", "internal", ["eu-west-1"], False, "production",
                                    "Graded query/product relevance labels from merchandisers and a vendor panel.", ["labels"])),
    ("product-catalog-snapshots", ("product-catalog", "team-catalog", "table", "internal", ["eu-west-1"], False, "production",
                                   "Daily snapshots of product titles, attributes, prices and categories.", ["snapshots"])),
    ("product-reviews", ("product-catalog", "team-catalog", "documents", "internal", ["eu-west-1"], True, "production",
                         "Customer reviews with moderation decisions, including rejected ones.", ["ugc", "labels"])),
    ("support-tickets-2023", ("customer-support", "team-support-tools", "documents", "confidential", ["eu-west-1"], True, "production",
                              "Resolved support conversations from 2023 with queue, CSAT and macro used; PII redacted for training copies.", ["support"])),
    ("help-center-articles", ("customer-support", "team-support-tools", "documents", "public", ["eu-west-1"], False, "production",
                              "Published help center articles in 9 languages.", ["knowledge-base"])),
    ("pii-annotations", ("security", "team-security", "documents", "restricted", ["eu-west-1"], True, "production",
                         "Human-annotated spans of personal data in tickets, reviews and logs for PII model training.", ["labels", "gdpr"])),
    ("marketing-email-events", ("engagement", "team-growth", "events", "internal", ["eu-west-1"], True, "production",
                                "Email sends, opens, clicks and unsubscribes per customer.", ["email"])),
    ("incident-postmortems", ("observability", "team-sre", "documents", "internal", ["eu-west-1"], False, "production",
                              "Blameless postmortems and timelines since 2020.", ["incident-response"])),
    ("code-review-history", ("developer-platform", "team-developer-experience", "documents", "internal", ["eu-west-1"], False, "experimental",
                             "Pull request diffs and accepted review comments used to evaluate the code review agent.", ["evals"])),
    ("llm-eval-goldens", ("ml-platform", "team-ml-platform", "table", "internal", ["eu-west-1"], False, "production",
                          "Golden question/answer sets and rubrics for evaluating prompts and agents.", ["evals", "llm"])),
])

PROMPTS = OrderedDict()


def prompt(name, system, owner, model, description, template, tags=(), lifecycle="production"):
    assert name not in PROMPTS, name
    PROMPTS[name] = dict(system=system, owner=owner, model=f"model:{model}", description=description,
                         template=dedent(template), tags=list(tags), lifecycle=lifecycle)


prompt("support-reply-draft", "customer-support", "team-applied-ai", "anthropic-claude-sonnet",
       "Drafts a reply to a customer ticket for a human agent to review and send.", '''
    You are a customer care specialist at Northwind Labs, an online retailer of home and outdoor goods.
    Draft a reply to the customer below. A human agent will review and edit it before sending.

    Guidelines:
    - Write in {{ locale }} and match the customer's tone, but stay warm and professional.
    - Use only facts from the order data and knowledge base excerpts. Never invent dates, amounts or policies.
    - If a refund or replacement is needed, say that the agent will arrange it; do not promise it yourself.
    - Keep it under 150 words. Sign off as "{{ agent_first_name }} from Northwind".

    Customer: {{ customer_first_name }} (customer since {{ customer_since }}, loyalty tier {{ loyalty_tier }})

    Ticket history:
    {{ ticket_thread }}

    Order data:
    {{ order_summary }}

    Knowledge base excerpts:
    {{ kb_excerpts }}
    ''', ["support", "drafting"])

prompt("support-ticket-summary", "customer-support", "team-applied-ai", "anthropic-claude-haiku",
       "Summarises a long ticket thread for the agent taking over the case.", '''
    Summarise this support ticket for an agent who is picking it up for the first time.

    Return exactly three sections:
    1. Issue: one sentence describing what the customer needs.
    2. What has happened so far: up to 4 bullet points, oldest first.
    3. Next step: the single most useful action for the agent.

    Do not include email addresses, phone numbers or payment details in the summary.

    Ticket {{ ticket_id }} ({{ channel }}, opened {{ opened_at }}):
    {{ ticket_thread }}
    ''', ["support", "summarisation"])

prompt("support-kb-answer", "customer-support", "team-applied-ai", "llama-3-1-8b-support",
       "Answers a customer question strictly from retrieved help center articles, with citations.", '''
    Answer the customer's question using only the help center articles below.
    If the articles do not contain the answer, reply exactly: "I could not find this in our help center."
    Cite the articles you used as [1], [2], ... after the sentence that relies on them.

    Question ({{ locale }}): {{ question }}

    Articles:
    {% for article in articles %}
    [{{ loop.index }}] {{ article.title }} ({{ article.url }})
    {{ article.body }}
    {% endfor %}
    ''', ["support", "rag"])

prompt("refund-eligibility-check", "payments", "team-payments", "openai-gpt-4o",
       "Decides whether a refund request is within policy and explains the decision as JSON.", '''
    You check refund requests against the Northwind refund policy. You do not issue refunds.

    Policy:
    {{ refund_policy }}

    Request:
    - Order: {{ order_id }} placed {{ order_date }}, delivered {{ delivery_date }}
    - Items: {{ items }}
    - Amount requested: {{ amount }} {{ currency }}
    - Reason given by customer: {{ reason }}
    - Previous refunds for this customer in the last 12 months: {{ refund_count_12m }}
    - Fraud risk score: {{ risk_score }} ({{ risk_decision }})

    Respond with JSON only:
    {"eligible": true|false, "amount_minor": <integer>, "policy_clause": "<clause id>",
     "needs_human_approval": true|false, "explanation": "<one sentence for the support agent>"}

    Always set needs_human_approval to true if the amount exceeds {{ approval_threshold }} or the risk decision is not APPROVE.
    ''', ["refunds", "structured-output"])

prompt("refund-customer-message", "payments", "team-payments", "anthropic-claude-haiku",
       "Writes the customer-facing confirmation once a refund has been approved.", '''
    Write a short message to {{ customer_first_name }} in {{ locale }} confirming their refund.

    Facts:
    - Refund amount: {{ amount_formatted }}
    - Refunded to: {{ payment_method_label }}
    - Expected to arrive within {{ settlement_days }} business days
    - Order number: {{ order_number }}

    Keep it to three sentences, no marketing, no apology unless the reason was "{{ reason }}" and it was our fault.
    ''', ["refunds", "customer-communication"])

prompt("incident-triage-summary", "observability", "team-sre", "anthropic-claude-sonnet",
       "Builds the first situation report for a new incident from alerts, deploys and metrics.", '''
    You are assisting the on-call engineer during a production incident at Northwind Labs.

    Firing alerts:
    {{ alerts }}

    Deployments in the last 2 hours:
    {{ recent_deployments }}

    Key metrics for {{ service }} and its dependencies (from the catalog):
    {{ metrics_snapshot }}

    Similar past incidents:
    {{ similar_postmortems }}

    Write a situation report with:
    - Impact: who is affected and how (customers, internal users, revenue), with numbers.
    - Most likely cause: ranked hypotheses, each with the evidence supporting it.
    - Suggested next checks: at most 3 concrete commands or dashboards.
    - Rollback candidate: a deployment ID if one is plausible, otherwise "none".

    State your confidence for each hypothesis. Do not recommend actions you cannot justify from the evidence.
    ''', ["incident-response", "sre"])

prompt("incident-runbook-lookup", "observability", "team-sre", "anthropic-claude-sonnet",
       "Extracts the relevant runbook steps for a firing alert.", '''
    Given the alert and the runbook below, list the runbook steps that apply to this alert, in order.
    Quote commands exactly as written in the runbook. Skip steps that require conditions not met by the alert.

    Alert: {{ alert_name }} on {{ service }} ({{ environment }})
    Labels: {{ alert_labels }}

    Runbook ({{ runbook_url }}):
    {{ runbook_markdown }}
    ''', ["incident-response", "runbooks"])

prompt("code-review-comment", "developer-platform", "team-developer-experience", "anthropic-claude-sonnet",
       "Reviews a pull request diff and proposes inline comments.", '''
    You are a senior engineer reviewing a pull request in {{ repository }} ({{ language }}).
    Team conventions:
    {{ conventions }}

    Review the diff below. Only comment on:
    - bugs and incorrect edge-case handling,
    - security issues (injection, secrets, authz, unsafe deserialisation),
    - missing tests for changed behaviour,
    - clear violations of the conventions above.
    Do not comment on style that a formatter would fix. If the diff looks good, return an empty list.

    Return JSON: [{"path": "...", "line": <int>, "severity": "blocker|suggestion|nit", "comment": "..."}]

    PR title: {{ pr_title }}
    PR description: {{ pr_description }}

    Diff:
    {{ diff }}
    ''', ["code-review", "structured-output"])

prompt("code-review-pr-summary", "developer-platform", "team-developer-experience", "anthropic-claude-haiku",
       "Summarises what a pull request changes for reviewers.", '''
    Summarise this pull request for reviewers in at most 5 bullet points:
    what changes, why (if stated), risky areas, and anything reviewers should test manually.
    Mention database migrations, API contract changes and feature flags explicitly if present.

    Title: {{ pr_title }}
    Files changed: {{ files_changed }}
    Diff (truncated to {{ max_diff_lines }} lines):
    {{ diff }}
    ''', ["code-review", "summarisation"])

prompt("product-description-generator", "product-catalog", "team-catalog", "openai-gpt-4o",
       "Writes on-brand product descriptions from structured attributes.", '''
    Write a product description for the Northwind shop in {{ locale }}.

    Brand voice: practical, warm, outdoorsy; no superlatives like "best" or "perfect"; no claims we cannot verify.
    Length: {{ target_words }} words, followed by 3-5 bullet points of key features.

    Product: {{ title }}
    Brand: {{ brand }}
    Category: {{ category_path }}
    Attributes:
    {{ attributes }}
    Supplier notes (may contain errors, prefer attributes when they conflict):
    {{ supplier_notes }}
    ''', ["catalog", "content-generation"])

prompt("product-attribute-extraction", "product-catalog", "team-catalog", "anthropic-claude-haiku",
       "Extracts structured attributes from supplier product sheets.", '''
    Extract product attributes from the supplier text below into JSON matching this schema:
    {{ attribute_schema }}

    Rules:
    - Use null when a value is not stated. Do not guess.
    - Normalise units to metric ({{ unit_system }}).
    - Colours must be one of: {{ allowed_colours }}.

    Supplier text:
    {{ supplier_text }}
    ''', ["catalog", "extraction", "structured-output"])

prompt("search-query-rewrite", "search", "team-search", "anthropic-claude-haiku",
       "Rewrites long-tail natural-language queries into structured search requests.", '''
    Rewrite the shopper's query into a structured search request for our product search engine.

    Available filters: {{ available_filters }}
    Category tree (top levels): {{ categories }}

    Return JSON: {"keywords": "...", "category": "...|null", "filters": {...}, "sort": "relevance|price_asc|price_desc|newest"}
    Keep brand names and model numbers exactly as typed.

    Query ({{ locale }}): {{ query }}
    ''', ["search", "structured-output"])

prompt("search-answer-synthesis", "search", "team-search", "vertex-gemini-pro",
       "Writes a short answer above search results for question-style queries.", '''
    A shopper asked: "{{ query }}"

    Here are the top {{ result_count }} products with their key attributes:
    {{ products }}

    Write 2-3 sentences that help the shopper choose between these products, referring to them by name.
    Only use the attributes provided. If none of the products fit the question, say so and suggest a broader search.
    ''', ["search", "rag"], lifecycle="experimental")

prompt("fraud-case-explanation", "payments", "team-applied-ai", "anthropic-claude-sonnet",
       "Explains a fraud model decision to a risk analyst in plain language.", '''
    You help fraud analysts review payments flagged by the fraud-scoring-model.
    Explain the decision below in plain language for the analyst. You are not making the decision.

    Assessment {{ assessment_id }}: score {{ score }} -> {{ decision }} (model {{ model_version }})
    Top feature attributions:
    {{ attributions }}

    Customer history:
    {{ customer_history }}

    Write:
    - Why the model flagged it (3 bullets max, referencing the attributions).
    - Signals that point the other way, if any.
    - What the analyst should verify before approving or declining.
    Never mention protected characteristics, and do not speculate about the customer's identity.
    ''', ["fraud", "explainability"])

prompt("chargeback-dispute-letter", "payments", "team-payments", "openai-gpt-4o",
       "Drafts a rebuttal letter for a card-network dispute from collected evidence.", '''
    Draft a dispute response for {{ card_network }} reason code {{ reason_code }} ({{ reason_description }}).

    Transaction: {{ amount }} on {{ transaction_date }}, order {{ order_id }}
    Evidence available:
    - Delivery: {{ delivery_evidence }}
    - Customer communication: {{ communication_summary }}
    - Account history: {{ account_history }}
    - AVS/CVV/3DS results: {{ auth_results }}

    Structure the letter as: summary, evidence mapped to the reason code requirements, conclusion.
    Be factual and concise (max 400 words). Do not include full card numbers or the customer's address.
    ''', ["chargebacks", "drafting"])

prompt("marketing-email-copy", "engagement", "team-growth", "vertex-gemini-pro",
       "Generates subject lines and body copy variants for campaign A/B tests.", '''
    Write {{ variant_count }} variants of a marketing email for the campaign "{{ campaign_name }}".

    Audience: {{ segment_description }}
    Goal: {{ goal }}
    Products to feature: {{ featured_products }}
    Offer: {{ offer }} (terms: {{ offer_terms }})
    Language: {{ locale }}

    For each variant return: subject (max 50 characters), preheader (max 90 characters), body (max 120 words).
    Follow the Northwind brand voice: practical, warm, no false urgency, no ALL CAPS, no more than one exclamation mark.
    ''', ["marketing", "content-generation"])

prompt("shopping-assistant-system", "storefront", "team-applied-ai", "anthropic-claude-sonnet",
       "System prompt for the on-site shopping assistant.", '''
    You are the Northwind shopping assistant on {{ site_name }}. You help shoppers find products for their home and outdoor projects.

    You can search products, look up product details and recommendations, and add items to the shopper's cart when asked.
    Current page: {{ page_context }}
    Cart: {{ cart_summary }}
    Market: {{ market }}, currency {{ currency }}, language {{ locale }}

    Rules:
    - Only recommend products returned by your tools; always show the current price from the tool result.
    - Ask a clarifying question when the request is ambiguous (size, budget, use case).
    - Never ask for or repeat payment details, passwords or full addresses.
    - For orders, returns and complaints, offer to hand over to customer care.
    - Do not give safety-critical advice (e.g. electrical or gas installation); point to a professional.
    ''', ["shopping-assistant", "system-prompt"], lifecycle="experimental")

prompt("review-summary", "product-catalog", "team-catalog", "vertex-gemini-pro",
       "Summarises approved reviews into pros and cons shown on the product page.", '''
    Summarise what customers say about "{{ product_title }}" based on {{ review_count }} approved reviews
    (average rating {{ average_rating }}/5).

    Return JSON: {"pros": [up to 3 short phrases], "cons": [up to 3 short phrases], "summary": "one sentence"}
    Only include points mentioned by at least {{ min_mentions }} reviewers. Do not quote reviewers by name.

    Reviews:
    {{ reviews }}
    ''', ["reviews", "summarisation"])

prompt("sql-analyst-query", "analytics", "team-analytics", "openai-gpt-4o",
       "Translates a business question into Snowflake SQL over certified models.", '''
    You write Snowflake SQL for Northwind analysts. Use only the certified models and metrics below.

    Models:
    {{ model_schemas }}

    Metric definitions:
    {{ metric_definitions }}

    Question: {{ question }}
    Time zone: {{ timezone }}. Fiscal year starts {{ fiscal_year_start }}.

    Rules:
    - Never select columns tagged as PII: {{ pii_columns }}.
    - Always add a LIMIT of at most {{ max_rows }} unless aggregating.
    - Prefer metrics from the metrics layer over recomputing them.
    Return the SQL in a single code block, followed by one sentence explaining any assumption you made.
    ''', ["text-to-sql", "analytics"])

prompt("data-catalog-description", "data-platform", "team-data-eng", "anthropic-claude-haiku",
       "Drafts table and column documentation for the data catalog.", '''
    Document the warehouse table {{ table_name }} for the data catalog.

    Columns and types:
    {{ columns }}
    Sample rows (PII masked):
    {{ sample_rows }}
    Upstream lineage: {{ upstream }}
    dbt model SQL:
    {{ model_sql }}

    Return JSON: {"description": "...", "columns": {"<name>": "<one-line description>"}, "suspected_pii": ["<column>", ...]}
    Mark a column as suspected PII if it could identify a person, even indirectly.
    ''', ["data-catalog", "documentation"])


# name -> dict
AGENTS = OrderedDict()


def agent(name, system, owner, type_, autonomy, risk, classification, models, prompts, tools, description, tags=(),
          lifecycle="production", title=None):
    assert name not in AGENTS, name
    AGENTS[name] = dict(system=system, owner=owner, type=type_, autonomy=autonomy, riskTier=risk,
                        dataClassification=classification, models=[f"model:{m}" for m in models],
                        prompts=[f"prompt:{p}" for p in prompts], tools=list(tools), description=description,
                        tags=list(tags), lifecycle=lifecycle, title=title)


agent("support-copilot-agent", "customer-support", "team-applied-ai", "assistant", "suggest", "limited", "confidential",
      ["anthropic-claude-sonnet", "anthropic-claude-haiku", "llama-3-1-8b-support", "bge-m3-embedding"],
      ["support-reply-draft", "support-ticket-summary", "support-kb-answer"],
      ["api:support-tickets-api", "api:orders-api", "api:shipping-api", "api:returns-api", "api:customer-profile-api",
       "api:help-center-search-api"],
      "Side-panel copilot in the support console: summarises tickets, looks up orders and drafts replies for agents to send.",
      ["support", "copilot"])
agent("refund-agent", "payments", "team-payments", "workflow", "supervised", "high", "restricted",
      ["openai-gpt-4o", "anthropic-claude-haiku"],
      ["refund-eligibility-check", "refund-customer-message"],
      ["api:orders-api", "api:fraud-scoring-api", "api:refunds-api", "component:refund-service", "api:notifications-api"],
      "Checks refund requests against policy and prepares refunds; amounts above the threshold need human approval.",
      ["refunds", "human-in-the-loop"], lifecycle="experimental")
agent("chargeback-dispute-agent", "payments", "team-payments", "workflow", "supervised", "high", "restricted",
      ["openai-gpt-4o"], ["chargeback-dispute-letter"],
      ["api:disputes-api", "api:orders-api", "api:shipping-api"],
      "Collects delivery and communication evidence for disputes and drafts the rebuttal for an analyst to submit.",
      ["chargebacks", "human-in-the-loop"], lifecycle="experimental")
agent("fraud-investigation-agent", "payments", "team-applied-ai", "assistant", "suggest", "high", "restricted",
      ["anthropic-claude-sonnet", "fraud-scoring-model"], ["fraud-case-explanation"],
      ["api:fraud-scoring-api", "api:payments-api", "api:customer-profile-api", "api:orders-api"],
      "Helps risk analysts review flagged payments by explaining model decisions and gathering account history.",
      ["fraud", "explainability"])
agent("incident-triage-agent", "observability", "team-sre", "autonomous", "supervised", "limited", "internal",
      ["anthropic-claude-sonnet"], ["incident-triage-summary", "incident-runbook-lookup"],
      ["api:alerts-api", "api:metrics-query-api", "api:deployments-api", "component:postmortem-search"],
      "Joins new incident channels, correlates alerts with recent deployments and posts a situation report; rollbacks need a human.",
      ["incident-response", "sre"])
agent("code-review-agent", "developer-platform", "team-developer-experience", "workflow", "suggest", "minimal", "internal",
      ["anthropic-claude-sonnet", "anthropic-claude-haiku"], ["code-review-comment", "code-review-pr-summary"],
      ["api:ci-pipelines-api"],
      "Reviews pull requests: posts a summary and suggested inline comments; never approves or merges.",
      ["code-review", "github"])
agent("shopping-assistant-agent", "storefront", "team-applied-ai", "assistant", "autonomous", "limited", "confidential",
      ["anthropic-claude-sonnet", "anthropic-claude-haiku", "product-embedding-model"],
      ["shopping-assistant-system", "search-query-rewrite"],
      ["api:search-api", "api:product-catalog-api", "api:recommendations-api", "api:cart-api"],
      "Conversational shopping assistant on the storefront; can search, compare and add items to the cart, never check out.",
      ["shopping-assistant", "customer-facing"], lifecycle="experimental")
agent("catalog-enrichment-agent", "product-catalog", "team-catalog", "workflow", "autonomous", "minimal", "internal",
      ["openai-gpt-4o", "anthropic-claude-haiku"], ["product-description-generator", "product-attribute-extraction"],
      ["api:product-catalog-api"],
      "Nightly job that fills missing attributes and drafts descriptions for new products; changes land as drafts for merchandisers.",
      ["catalog", "batch"])
agent("analytics-copilot-agent", "analytics", "team-analytics", "assistant", "suggest", "limited", "confidential",
      ["openai-gpt-4o"], ["sql-analyst-query"],
      ["api:metrics-api", "api:warehouse-query-api", "api:data-catalog-api"],
      "Answers business questions with certified metrics or generated SQL, always showing the query it ran.",
      ["text-to-sql", "analytics"], lifecycle="experimental")
agent("marketing-copy-agent", "engagement", "team-growth", "workflow", "supervised", "limited", "internal",
      ["vertex-gemini-pro"], ["marketing-email-copy"],
      ["api:campaigns-api", "api:experiments-api"],
      "Generates localised email copy variants and sets them up as an experiment; a marketer approves before scheduling.",
      ["marketing", "content-generation"])
agent("data-catalog-curator-agent", "data-platform", "team-data-eng", "workflow", "autonomous", "minimal", "internal",
      ["anthropic-claude-haiku"], ["data-catalog-description"],
      ["api:data-catalog-api", "api:warehouse-query-api"],
      "Drafts documentation for undocumented warehouse tables and flags suspected PII columns for review.",
      ["data-catalog", "governance"])


# --------------------------------------------------------------------------
# Entity builders
# --------------------------------------------------------------------------

_SRC_DIR = {"service": "services", "website": "apps", "library": "libs"}


def _dedup(seq):
    out = []
    for x in seq:
        if x not in out:
            out.append(x)
    return out


def api_providers():
    providers = {}
    for name, c in COMPONENTS.items():
        for a in c["provides"]:
            assert a not in providers, f"{a} provided twice"
            providers[a] = name
    return providers


def consumed_apis(name):
    c = COMPONENTS[name]
    apis = list(c["consumes"])
    for dep in c["deps"]:
        kind, target = dep.split(":", 1)
        if kind != "component":
            continue
        sync = [a for a in COMPONENTS[target]["provides"] if API_DEFS[a][0] != "asyncapi"]
        if sync:
            apis.append(sync[0])
    return [a for a in _dedup(apis) if a not in c["provides"]]


def component_entity(name):
    c = COMPONENTS[name]
    system = c["system"]
    src = f"{_SRC_DIR[c['type']]}/{name}"
    links = []
    if c["type"] == "website":
        host = {"storefront-web": "shop", "status-page": "status", "help-center-web": "help", "marketing-site": "www",
                "login-web": "login"}.get(name)
        url = f"https://{host}.{CORP}" if host else f"https://{name}.internal.{CORP}"
        links.append({"url": url, "title": "Open", "icon": "web"})
    if c["type"] in ("service", "website"):
        links.append({"url": f"https://grafana.{CORP}/d/{name}/overview", "title": "Grafana dashboard", "icon": "dashboard"})
        links.append({"url": f"https://runbooks.{CORP}/{system}/{name}", "title": "Runbook", "icon": "docs"})
    else:
        links.append({"url": f"https://docs.{CORP}/libraries/{name}", "title": "Reference docs", "icon": "docs"})
    ann = OrderedDict([
        ("github.com/project-slug", f"{GH_ORG}/{system}"),
        ("backstage.io/source-location", f"url:https://github.com/{GH_ORG}/{system}/tree/main/{src}/"),
        ("backstage.io/techdocs-ref", "dir:."),
    ])
    if c["type"] != "library" and c["lifecycle"] == "production":
        ann["pagerduty.com/service-id"] = pd_id(name)
    if c["type"] == "service":
        ann["backstage.io/kubernetes-id"] = name
    spec = OrderedDict([("type", c["type"]), ("lifecycle", c["lifecycle"]), ("owner", c["owner"]), ("system", system)])
    if c["deps"]:
        spec["dependsOn"] = list(c["deps"])
    if c["provides"]:
        spec["providesApis"] = list(c["provides"])
    consumes = consumed_apis(name)
    if consumes:
        spec["consumesApis"] = consumes
    tags = _dedup(([c["lang"]] if c["lang"] else []) + c["tags"])
    return entity(BACKSTAGE, "Component",
                  meta(name, c["description"], tags=tags, links=links, annotations=ann,
                       title=c["title"] or titleize(name)), spec)


def api_entity(name, provider):
    type_, description, tags, definition, lifecycle = API_DEFS[name]
    c = COMPONENTS[provider]
    ann = OrderedDict([("github.com/project-slug", f"{GH_ORG}/{c['system']}"),
                       ("backstage.io/source-location",
                        f"url:https://github.com/{GH_ORG}/{c['system']}/tree/main/{_SRC_DIR[c['type']]}/{provider}/api/")])
    links = [{"url": f"https://developer.{CORP}/apis/{name}", "title": "API reference", "icon": "docs"}]
    return entity(BACKSTAGE, "API",
                  meta(name, description, tags=_dedup([type_] + tags), links=links, annotations=ann, title=titleize(name)),
                  OrderedDict([("type", type_), ("lifecycle", lifecycle), ("owner", c["owner"]), ("system", c["system"]),
                               ("definition", definition)]))


def resource_entity(name):
    r = RESOURCES[name]
    ann = OrderedDict([("backstage.io/source-location",
                        f"url:https://github.com/{GH_ORG}/infrastructure-live/tree/main/{r['region']}/{r['system']}/{name}/"),
                       ("plinth.dev/cloud-region", r["region"])])
    links = [{"url": f"https://grafana.{CORP}/d/resource-{name}/overview", "title": "Grafana dashboard", "icon": "dashboard"}]
    spec = OrderedDict([("type", r["type"]), ("owner", r["owner"]), ("system", r["system"])])
    if r["deps"]:
        spec["dependsOn"] = list(r["deps"])
    return entity(BACKSTAGE, "Resource",
                  meta(name, r["description"], tags=r["tags"], links=links, annotations=ann,
                       title=r["title"] or titleize(name)), spec)


def model_entity(name):
    (system, owner, type_, provider, license_, risk, classification, trained_on, card, lifecycle, desc, tags) = MODELS[name]
    links = [{"url": card, "title": "Model card", "icon": "docs"}]
    if provider == "self-hosted":
        links.append({"url": f"https://mlflow.{CORP}/#/models/{name}", "title": "Model registry", "icon": "catalog"})
    return entity(PLINTH, "Model",
                  meta(name, desc, tags=_dedup([type_] + tags), links=links, title=titleize(name)),
                  OrderedDict([("type", type_), ("owner", owner), ("system", system), ("lifecycle", lifecycle),
                               ("provider", provider), ("license", license_), ("riskTier", risk),
                               ("dataClassification", classification), ("trainedOn", list(trained_on)),
                               ("modelCard", card)]))


def dataset_entity(name):
    system, owner, type_, classification, residency, pii, lifecycle, desc, tags = DATASETS[name]
    links = [{"url": f"https://datahub.{CORP}/dataset/{name}", "title": "Data catalog", "icon": "catalog"}]
    return entity(PLINTH, "Dataset",
                  meta(name, desc, tags=_dedup([type_] + tags + (["pii"] if pii else [])), links=links, title=titleize(name)),
                  OrderedDict([("type", type_), ("owner", owner), ("system", system), ("lifecycle", lifecycle),
                               ("dataClassification", classification), ("residency", list(residency)),
                               ("containsPii", pii)]))


def prompt_entity(name):
    p = PROMPTS[name]
    ann = OrderedDict([("backstage.io/source-location",
                        f"url:https://github.com/{GH_ORG}/{p['system']}/tree/main/prompts/{name}.md")])
    return entity(PLINTH, "Prompt",
                  meta(name, p["description"], tags=p["tags"], annotations=ann, title=titleize(name)),
                  OrderedDict([("owner", p["owner"]), ("system", p["system"]), ("lifecycle", p["lifecycle"]),
                               ("model", p["model"]), ("template", p["template"])]))


def agent_entity(name):
    a = AGENTS[name]
    links = [{"url": f"https://agents.internal.{CORP}/traces?agent={name}", "title": "Agent traces", "icon": "dashboard"},
             {"url": f"https://runbooks.{CORP}/{a['system']}/{name}", "title": "Runbook and escalation", "icon": "docs"}]
    return entity(PLINTH, "Agent",
                  meta(name, a["description"], tags=_dedup(["llm-agent"] + a["tags"]), links=links, title=a["title"] or titleize(name)),
                  OrderedDict([("type", a["type"]), ("owner", a["owner"]), ("system", a["system"]),
                               ("lifecycle", a["lifecycle"]), ("autonomy", a["autonomy"]), ("riskTier", a["riskTier"]),
                               ("dataClassification", a["dataClassification"]), ("models", a["models"]),
                               ("prompts", a["prompts"]), ("tools", a["tools"])]))


# --------------------------------------------------------------------------
# Assembly, validation, output
# --------------------------------------------------------------------------

def build_files():
    providers = api_providers()
    missing = set(API_DEFS) - set(providers)
    assert not missing, f"APIs without provider: {missing}"
    files = OrderedDict()
    files["org/groups.yaml"] = build_groups()
    files["org/users.yaml"] = build_users()
    files["architecture/catalog-info.yaml"] = build_architecture()
    for system in SYSTEMS:
        docs = [system_entity(system)]
        docs += [component_entity(n) for n, c in COMPONENTS.items() if c["system"] == system]
        docs += [api_entity(n, providers[n]) for n in API_DEFS if COMPONENTS[providers[n]]["system"] == system]
        docs += [resource_entity(n) for n, r in RESOURCES.items() if r["system"] == system]
        docs += [model_entity(n) for n, m in MODELS.items() if m[0] == system]
        docs += [dataset_entity(n) for n, d in DATASETS.items() if d[0] == system]
        docs += [prompt_entity(n) for n, p in PROMPTS.items() if p["system"] == system]
        docs += [agent_entity(n) for n, a in AGENTS.items() if a["system"] == system]
        files[f"{system}/catalog-info.yaml"] = docs
    root = entity(BACKSTAGE, "Location",
                  meta("demo-catalog", "Northwind Labs demo catalogue loaded by `plinth serve --demo`.",
                       tags=["demo"], title="Northwind Labs demo catalogue"),
                  OrderedDict([("targets", [f"./{path}" for path in files])]))
    out = OrderedDict([("catalog-info.yaml", [root])])
    out.update(files)
    return out


NAME_RE = re.compile(r"^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$")
TAG_RE = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")


def validate(files):
    entities = {}
    for path, docs in files.items():
        for d in docs:
            key = (d["kind"].lower(), d["metadata"]["name"])
            assert key not in entities, f"duplicate {key}"
            entities[key] = d
            name = d["metadata"]["name"]
            assert NAME_RE.match(name) and len(name) <= 63, f"bad name {name}"
            for t in d["metadata"].get("tags", []):
                assert TAG_RE.match(t) and len(t) <= 63, f"bad tag {t!r} on {name}"

    def check(ref, default_kind, allowed, where):
        kind, target = ref.split(":", 1) if ":" in ref else (default_kind, ref)
        assert kind in allowed, f"{where}: kind {kind} not allowed in {ref}"
        assert (kind, target) in entities, f"{where}: unresolved {ref}"
        return (kind, target)

    graph = {}
    for (kind, name), d in entities.items():
        spec, where = d["spec"], f"{kind}:{name}"
        for field, kinds in (("owner", {"group"}),):
            if field in spec:
                check(spec[field], "group", kinds, where)
        if "system" in spec:
            check(spec["system"], "system", {"system"}, where)
        if "domain" in spec:
            check(spec["domain"], "domain", {"domain"}, where)
        if "parent" in spec:
            check(spec["parent"], "group", {"group"}, where)
        for g in spec.get("children", []):
            child = entities[check(g, "group", {"group"}, where)]
            assert child["spec"]["parent"] == name, f"{g} parent mismatch"
        for g in spec.get("memberOf", []):
            check(g, "group", {"group"}, where)
        edges = []
        for r in spec.get("dependsOn", []):
            edges.append(check(r, "component", {"component", "resource", "model", "agent"}, where))
        for a in spec.get("providesApis", []) + spec.get("consumesApis", []):
            check(a, "api", {"api"}, where)
        for r in spec.get("trainedOn", []):
            edges.append(check(r, "dataset", {"dataset"}, where))
        if kind == "prompt":
            edges.append(check(spec["model"], "model", {"model"}, where))
        for r in spec.get("models", []):
            edges.append(check(r, "model", {"model"}, where))
        for r in spec.get("prompts", []):
            p = entities[check(r, "prompt", {"prompt"}, where)]
            edges.append(("prompt", p["metadata"]["name"]))
            assert p["spec"]["model"] in spec["models"], f"{where}: {r} uses a model the agent does not declare"
        for r in spec.get("tools", []):
            edges.append(check(r, "api", {"api", "component"}, where))
        graph[(kind, name)] = edges
    # APIs point at the component providing them, so agent tools / dependsOn form one graph.
    for (kind, name), d in entities.items():
        for a in d["spec"].get("providesApis", []):
            graph.setdefault(("api", a), []).append((kind, name))

    state = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                raise AssertionError("cycle: " + " -> ".join(f"{k}:{n}" for k, n in stack + [node, nxt]))
            if not state.get(nxt):
                visit(nxt, stack + [node])
        state[node] = 2

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    return entities


def main():
    files = build_files()
    entities = validate(files)
    for path, docs in files.items():
        full = os.path.join(HERE, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(multi_doc(docs))
    counts = {}
    for kind, _ in entities:
        counts[kind] = counts.get(kind, 0) + 1
    print(f"wrote {len(files)} files, {len(entities)} entities: "
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
