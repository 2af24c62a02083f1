//! API definitions as readers want them: OpenAPI operations with their
//! parameters, request bodies and responses (schemas as indented rows),
//! AsyncAPI channels and messages, gRPC services and methods from a proto
//! file. Everything is bounded: operations, rows per schema, schema depth.

use serde::Serialize;
use serde_json::Value;

pub(super) const MAX_OPERATIONS: usize = 300;
const MAX_SCHEMA_ROWS: usize = 80;
const MAX_SCHEMA_DEPTH: usize = 6;

/// One property of a schema, as an indented row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct SchemaRow {
    pub(super) depth: usize,
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) required: bool,
    pub(super) description: String,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Parameter {
    pub(super) name: String,
    /// `path`, `query`, `header`, `cookie`.
    pub(super) location: String,
    pub(super) required: bool,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) description: String,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Body {
    /// Content type, or the response status.
    pub(super) label: String,
    pub(super) description: String,
    pub(super) schema: Vec<SchemaRow>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Operation {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) summary: String,
    pub(super) operation_id: String,
    pub(super) description: String,
    pub(super) parameters: Vec<Parameter>,
    pub(super) request: Vec<Body>,
    pub(super) responses: Vec<Body>,
    pub(super) deprecated: bool,
}

/// An AsyncAPI channel with its operations and messages.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Channel {
    pub(super) name: String,
    pub(super) description: String,
    /// `publish`/`subscribe` (2.x) or `send`/`receive` (3.x).
    pub(super) actions: Vec<String>,
    pub(super) messages: Vec<Message>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Message {
    pub(super) name: String,
    pub(super) summary: String,
    pub(super) payload: Vec<SchemaRow>,
}

/// A gRPC service from a proto file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct GrpcService {
    pub(super) name: String,
    pub(super) methods: Vec<GrpcMethod>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct GrpcMethod {
    pub(super) name: String,
    pub(super) request: String,
    pub(super) response: String,
    pub(super) client_streaming: bool,
    pub(super) server_streaming: bool,
    /// The fields of the request and response messages, when defined in the file.
    pub(super) request_fields: Vec<SchemaRow>,
    pub(super) response_fields: Vec<SchemaRow>,
}

/// A definition as a JSON tree (JSON or the first YAML document).
pub(super) fn parse(definition: &str) -> Option<Value> {
    if definition.trim_start().starts_with('{') {
        serde_json::from_str(definition).ok()
    } else {
        let limits = plinth_model::yaml::YamlLimits::default();
        plinth_model::yaml::parse_documents(definition, &limits).into_iter().next()?.value.ok()
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// Follows a local `$ref` (`#/components/schemas/Pet`).
fn deref<'a>(document: &'a Value, value: &'a Value) -> (&'a Value, Option<String>) {
    let mut current = value;
    let mut name = None;
    for _ in 0..8 {
        let Some(reference) = current["$ref"].as_str() else { break };
        let Some(pointer) = reference.strip_prefix('#') else { break };
        name = reference.rsplit('/').next().map(str::to_string);
        match document.pointer(pointer) {
            Some(target) => current = target,
            None => break,
        }
    }
    (current, name)
}

fn type_of(document: &Value, schema: &Value) -> String {
    let (schema, name) = deref(document, schema);
    let base = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
        _ if schema.get("properties").is_some() => "object".to_string(),
        _ if schema.get("oneOf").is_some() => "oneOf".to_string(),
        _ if schema.get("anyOf").is_some() => "anyOf".to_string(),
        _ if schema.get("allOf").is_some() => "allOf".to_string(),
        _ => String::new(),
    };
    let base = if base == "array" { format!("array of {}", type_of(document, &schema["items"])) } else { base };
    let base = match schema["format"].as_str() {
        Some(format) => format!("{base} ({format})"),
        None => base,
    };
    match name {
        Some(name) if base.is_empty() => name,
        Some(name) => format!("{name}: {base}"),
        None if base.is_empty() => "any".to_string(),
        None => base,
    }
}

/// A schema's properties as rows (nested objects and arrays of objects
/// indented), `$ref`s followed, cycles and depth bounded.
pub(super) fn schema_rows(document: &Value, schema: &Value) -> Vec<SchemaRow> {
    let mut rows = Vec::new();
    let mut seen = Vec::new();
    visit(document, schema, 0, &mut rows, &mut seen);
    rows
}

fn visit(document: &Value, schema: &Value, depth: usize, rows: &mut Vec<SchemaRow>, seen: &mut Vec<String>) {
    if depth >= MAX_SCHEMA_DEPTH || rows.len() >= MAX_SCHEMA_ROWS {
        return;
    }
    let (mut schema, mut name) = deref(document, schema);
    if schema["type"] == "array" {
        let (items, items_name) = deref(document, &schema["items"]);
        schema = items;
        name = name.or(items_name);
    }
    if let Some(name) = &name {
        if seen.contains(name) {
            return;
        }
        seen.push(name.clone());
    }
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for part in ["allOf", "oneOf", "anyOf"] {
        for sub in schema[part].as_array().into_iter().flatten() {
            visit(document, sub, depth, rows, seen);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (property, sub) in properties {
            if rows.len() >= MAX_SCHEMA_ROWS {
                break;
            }
            let resolved = deref(document, sub).0;
            rows.push(SchemaRow {
                depth,
                name: property.clone(),
                kind: type_of(document, sub),
                required: required.contains(&property.as_str()),
                description: text(&resolved["description"]),
            });
            let nested = if resolved["type"] == "array" { deref(document, &resolved["items"]).0 } else { resolved };
            if nested.get("properties").is_some() || nested.get("allOf").is_some() {
                visit(document, sub, depth + 1, rows, seen);
            }
        }
    }
    if name.is_some() {
        seen.pop();
    }
}

/// The operations of an OpenAPI (3.x) or Swagger (2.0) document.
pub(super) fn openapi(document: &Value) -> Vec<Operation> {
    let Some(paths) = document["paths"].as_object() else { return Vec::new() };
    let mut operations = Vec::new();
    for (path, item) in paths {
        let item = deref(document, item).0;
        let shared: Vec<&Value> = item["parameters"].as_array().map(|p| p.iter().collect()).unwrap_or_default();
        for method in ["get", "put", "post", "delete", "patch", "head", "options", "trace"] {
            let Some(op) = item.get(method) else { continue };
            if operations.len() >= MAX_OPERATIONS {
                return operations;
            }
            let mut parameters = Vec::new();
            let mut swagger_body = Vec::new();
            for p in shared.iter().copied().chain(op["parameters"].as_array().into_iter().flatten()) {
                let p = deref(document, p).0;
                if p["in"] == "body" {
                    swagger_body.push(Body {
                        label: "body".into(),
                        description: text(&p["description"]),
                        schema: schema_rows(document, &p["schema"]),
                    });
                    continue;
                }
                let schema = if p.get("schema").is_some() { &p["schema"] } else { p };
                parameters.push(Parameter {
                    name: text(&p["name"]),
                    location: text(&p["in"]),
                    required: p["required"].as_bool().unwrap_or(false),
                    kind: type_of(document, schema),
                    description: text(&p["description"]),
                });
            }
            let request_body = deref(document, &op["requestBody"]).0;
            let mut request: Vec<Body> =
                content(document, &request_body["content"], &text(&request_body["description"]));
            request.extend(swagger_body);
            let mut responses = Vec::new();
            if let Some(codes) = op["responses"].as_object() {
                for (code, response) in codes {
                    let response = deref(document, response).0;
                    let description = text(&response["description"]);
                    let schema = if response.get("schema").is_some() {
                        schema_rows(document, &response["schema"])
                    } else {
                        content(document, &response["content"], "")
                            .into_iter()
                            .next()
                            .map(|b| b.schema)
                            .unwrap_or_default()
                    };
                    responses.push(Body { label: code.clone(), description, schema });
                }
            }
            operations.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                summary: text(&op["summary"]),
                operation_id: text(&op["operationId"]),
                description: text(&op["description"]),
                parameters,
                request,
                responses,
                deprecated: op["deprecated"].as_bool().unwrap_or(false),
            });
        }
    }
    operations
}

fn content(document: &Value, content: &Value, description: &str) -> Vec<Body> {
    content
        .as_object()
        .map(|types| {
            types
                .iter()
                .map(|(media, body)| Body {
                    label: media.clone(),
                    description: description.to_string(),
                    schema: schema_rows(document, &body["schema"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The channels of an AsyncAPI 2.x or 3.x document.
pub(super) fn asyncapi(document: &Value) -> Vec<Channel> {
    let Some(channels) = document["channels"].as_object() else { return Vec::new() };
    let mut out = Vec::new();
    for (key, channel) in channels.iter().take(MAX_OPERATIONS) {
        let channel = deref(document, channel).0;
        let mut actions = Vec::new();
        let mut messages = Vec::new();
        // 2.x: the operation sits in the channel.
        for action in ["publish", "subscribe"] {
            if let Some(op) = channel.get(action) {
                actions.push(action.to_string());
                let message = deref(document, &op["message"]);
                let alternatives: Vec<&Value> = match message.0["oneOf"].as_array() {
                    Some(list) => list.iter().collect(),
                    None => vec![&op["message"]],
                };
                for m in alternatives {
                    messages.push(message_of(document, m));
                }
            }
        }
        // 3.x: messages in the channel, operations apart naming it.
        if let Some(map) = channel["messages"].as_object() {
            for m in map.values() {
                messages.push(message_of(document, m));
            }
        }
        if let Some(operations) = document["operations"].as_object() {
            for op in operations.values() {
                let reference = op["channel"]["$ref"].as_str().unwrap_or_default();
                if reference.rsplit('/').next() == Some(key.as_str()) {
                    if let Some(action) = op["action"].as_str() {
                        if !actions.iter().any(|a| a == action) {
                            actions.push(action.to_string());
                        }
                    }
                }
            }
        }
        let name = channel["address"].as_str().map_or_else(|| key.clone(), str::to_string);
        out.push(Channel { name, description: text(&channel["description"]), actions, messages });
    }
    out
}

fn message_of(document: &Value, message: &Value) -> Message {
    let (resolved, reference) = deref(document, message);
    let name = resolved["name"].as_str().map(str::to_string).or(reference).unwrap_or_else(|| "message".to_string());
    Message {
        name,
        summary: resolved["summary"].as_str().or(resolved["title"].as_str()).unwrap_or_default().to_string(),
        payload: schema_rows(document, &resolved["payload"]),
    }
}

// ---------------------------------------------------------------- proto

fn tokens(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = source.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        if out.len() > 100_000 {
            break;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => {
                flush(&mut word, &mut out);
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut out);
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' | '\'' => {
                flush(&mut word, &mut out);
                let mut s = String::from(c);
                for d in chars.by_ref() {
                    s.push(d);
                    if d == c {
                        break;
                    }
                }
                out.push(s);
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => word.push(c),
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => {
                flush(&mut word, &mut out);
                out.push(c.to_string());
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Services and their methods from a proto file, with the fields of the
/// messages the file defines.
pub(super) fn proto(source: &str) -> Vec<GrpcService> {
    let tokens = tokens(source);
    let mut messages: std::collections::HashMap<String, Vec<SchemaRow>> = Default::default();
    let mut services = Vec::new();
    let mut i = 0;
    // Messages first (at any depth; nested names by their simple name).
    while i < tokens.len() {
        if tokens[i] == "message" && i + 2 < tokens.len() && tokens[i + 2] == "{" {
            let name = tokens[i + 1].clone();
            let mut fields = Vec::new();
            let mut j = i + 3;
            let mut depth = 1;
            while j < tokens.len() && depth > 0 {
                match tokens[j].as_str() {
                    "{" => depth += 1,
                    "}" => depth -= 1,
                    _ if depth == 1 => {
                        // [repeated|optional] type name = N ;   or map < k , v > name = N ;
                        let start = j;
                        let mut k = j;
                        while k < tokens.len() && tokens[k] != ";" && tokens[k] != "{" && tokens[k] != "}" {
                            k += 1;
                        }
                        if k == start {
                            j += 1;
                            continue;
                        }
                        let stmt = &tokens[start..k];
                        if let Some(eq) = stmt.iter().position(|t| t == "=") {
                            if eq >= 2 && !matches!(stmt[0].as_str(), "option" | "reserved" | "extensions") {
                                let field = stmt[eq - 1].clone();
                                let kind = stmt[..eq - 1]
                                    .join(" ")
                                    .replace(" < ", "<")
                                    .replace(" , ", ", ")
                                    .replace(" >", ">");
                                fields.push(SchemaRow {
                                    depth: 0,
                                    name: field,
                                    kind,
                                    required: false,
                                    description: String::new(),
                                });
                            }
                        }
                        j = k;
                        continue;
                    }
                    _ => {}
                }
                j += 1;
            }
            messages.insert(name, fields);
        }
        i += 1;
    }
    let fields = |name: &str| messages.get(name.rsplit('.').next().unwrap_or(name)).cloned().unwrap_or_default();
    i = 0;
    while i < tokens.len() {
        if tokens[i] == "service" && i + 2 < tokens.len() && tokens[i + 2] == "{" {
            let mut service = GrpcService { name: tokens[i + 1].clone(), methods: Vec::new() };
            let mut j = i + 3;
            let mut depth = 1;
            while j < tokens.len() && depth > 0 {
                match tokens[j].as_str() {
                    "{" => depth += 1,
                    "}" => depth -= 1,
                    "rpc" if depth == 1 => {
                        // rpc Name ( [stream] Req ) returns ( [stream] Resp )
                        let t = |k: usize| tokens.get(j + k).map(String::as_str).unwrap_or("");
                        let name = t(1).to_string();
                        let mut k = 3;
                        let client_streaming = t(k) == "stream";
                        if client_streaming {
                            k += 1;
                        }
                        let request = t(k).to_string();
                        k += 1; // )
                        if t(k) == ")" && t(k + 1) == "returns" && t(k + 2) == "(" {
                            k += 3;
                            let server_streaming = t(k) == "stream";
                            if server_streaming {
                                k += 1;
                            }
                            let response = t(k).to_string();
                            if service.methods.len() < MAX_OPERATIONS {
                                service.methods.push(GrpcMethod {
                                    request_fields: fields(&request),
                                    response_fields: fields(&response),
                                    name,
                                    request,
                                    response,
                                    client_streaming,
                                    server_streaming,
                                });
                            }
                            j += k;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            services.push(service);
            i = j;
            continue;
        }
        i += 1;
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openapi_operations_with_parameters_and_schemas() {
        let doc = parse(
            r##"
openapi: 3.0.3
paths:
  /pets/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
    get:
      summary: Get a pet
      parameters:
        - {name: fields, in: query, schema: {type: array, items: {type: string}}}
      responses:
        "200":
          description: The pet
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Pet"}
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Pet"}
      responses: {"201": {description: Created}}
components:
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        name: {type: string, description: The name}
        owner:
          type: object
          properties:
            id: {type: integer}
        friends: {type: array, items: {$ref: "#/components/schemas/Pet"}}
"##,
        )
        .unwrap();
        let ops = openapi(&doc);
        assert_eq!(ops.len(), 2);
        let get = &ops[0];
        assert_eq!((get.method.as_str(), get.path.as_str(), get.summary.as_str()), ("GET", "/pets/{id}", "Get a pet"));
        let params: Vec<(&str, &str, bool, &str)> = get
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.location.as_str(), p.required, p.kind.as_str()))
            .collect();
        assert_eq!(params, [("id", "path", true, "string (uuid)"), ("fields", "query", false, "array of string")]);
        let schema = &get.responses[0].schema;
        let rows: Vec<(usize, &str, &str, bool)> =
            schema.iter().map(|r| (r.depth, r.name.as_str(), r.kind.as_str(), r.required)).collect();
        assert_eq!(
            rows,
            [
                (0, "name", "string", true),
                (0, "owner", "object", false),
                (1, "id", "integer", false),
                (0, "friends", "array of Pet: object", false),
            ],
            "the recursive Pet is not expanded again"
        );
        assert_eq!(ops[1].request[0].label, "application/json");
        assert_eq!(ops[1].responses[0].label, "201");
    }

    #[test]
    fn asyncapi_2_and_3_channels() {
        let v2 = json!({
            "asyncapi": "2.6.0",
            "channels": {"orders/placed": {"subscribe": {"message": {"$ref": "#/components/messages/OrderPlaced"}}}},
            "components": {"messages": {"OrderPlaced": {"summary": "An order was placed",
                "payload": {"type": "object", "properties": {"orderId": {"type": "string"}}}}}}
        });
        let channels = asyncapi(&v2);
        assert_eq!(channels[0].name, "orders/placed");
        assert_eq!(channels[0].actions, ["subscribe"]);
        assert_eq!(channels[0].messages[0].name, "OrderPlaced");
        assert_eq!(channels[0].messages[0].payload[0].name, "orderId");
        let v3 = json!({
            "asyncapi": "3.0.0",
            "channels": {"placed": {"address": "orders.placed", "messages": {"m": {"name": "Placed", "payload": {"type": "object"}}}}},
            "operations": {"onPlaced": {"action": "receive", "channel": {"$ref": "#/channels/placed"}}}
        });
        let channels = asyncapi(&v3);
        assert_eq!(
            (channels[0].name.as_str(), channels[0].actions.clone()),
            ("orders.placed", vec!["receive".to_string()])
        );
        assert_eq!(channels[0].messages[0].name, "Placed");
    }

    #[test]
    fn proto_services_methods_and_fields() {
        let source = r#"
syntax = "proto3";
package northwind.auth.v1;
// The token service.
service TokenService {
  rpc Issue (IssueRequest) returns (IssueResponse);
  /* streaming */
  rpc Watch (stream WatchRequest) returns (stream Event) { option deprecated = true; }
}
message IssueRequest { string subject = 1; repeated string scopes = 2; map<string, string> claims = 3; }
message IssueResponse { string token = 1; }
"#;
        let services = proto(source);
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].name, "TokenService");
        let methods: Vec<(&str, &str, &str, bool, bool)> = services[0]
            .methods
            .iter()
            .map(|m| (m.name.as_str(), m.request.as_str(), m.response.as_str(), m.client_streaming, m.server_streaming))
            .collect();
        assert_eq!(
            methods,
            [("Issue", "IssueRequest", "IssueResponse", false, false), ("Watch", "WatchRequest", "Event", true, true)]
        );
        let fields: Vec<(&str, &str)> =
            services[0].methods[0].request_fields.iter().map(|f| (f.name.as_str(), f.kind.as_str())).collect();
        assert_eq!(fields, [("subject", "string"), ("scopes", "repeated string"), ("claims", "map<string, string>")]);
    }
}
