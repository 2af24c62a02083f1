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

_PLAIN = re.compile(r"^[A-Za-z0-9_./($][A-Za-z0-9 _./()@,+:'&=$-]*$")
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
    ("priya.raman", "Priya Raman", "Software Engineer", ["team-checkout"]),
    ("daniel.kowalski", "Daniel Kowalski", "Engineering Manager, Payments", ["team-payments"]),
    ("sofia.alvarez", "Sofia Alvarez", "Staff Software Engineer", ["team-payments"]),
    ("kenji.watanabe", "Kenji Watanabe", "Senior Software Engineer", ["team-payments"]),
    ("hannah.schmidt", "Hannah Schmidt", "Engineering Manager, Orders", ["team-orders"]),
    ("omar.haddad", "Omar Haddad", "Senior Software Engineer", ["team-orders"]),
    ("grace.liu", "Grace Liu", "Software Engineer", ["team-orders"]),
    ("mateo.rossi", "Mateo Rossi", "Tech Lead, Catalog", ["team-catalog"]),
    ("chloe.dubois", "Chloe Dubois", "Senior Software Engineer", ["team-catalog"]),
    ("tunde.adeyemi", "Tunde Adeyemi", "Software Engineer", ["team-catalog"]),
    ("nikhil.sharma", "Nikhil Sharma", "Engineering Manager, Search", ["team-search"]),
    ("elena.petrova", "Elena Petrova", "Senior Search Engineer", ["team-search"]),
    ("jonas.berg", "Jonas Berg", "Machine Learning Engineer", ["team-search", "team-applied-ai"]),
    ("maria.santos", "Maria Santos", "Engineering Manager, Fulfillment", ["team-fulfillment"]),
    ("david.cohen", "David Cohen", "Senior Software Engineer", ["team-fulfillment"]),
    ("aisha.bello", "Aisha Bello", "Software Engineer", ["team-fulfillment"]),
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
    ("arjun.patel", "Arjun Patel", "Frontend Engineer", ["team-web"]),
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
            responses[code] = OrderedDict([("description", extra.get("desc", "OK")),
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
