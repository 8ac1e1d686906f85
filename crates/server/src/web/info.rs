//! The information pages: fees (from the market configuration), status (the same health as
//! `GET /api/v1/health`, refreshed by the page) and the API reference, rendered here from the
//! OpenAPI document the REST API serves — no third-party script, nothing inline.

use super::pages::{Chrome, error_page, market_rows, render};
use crate::api::public::{Health, health_of};
use crate::state::Shared;
use crate::views::MarketView;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;
use std::sync::LazyLock;

#[derive(Template)]
#[template(path = "fees.html")]
struct FeesPage {
    chrome: Chrome,
    markets: Vec<MarketView>,
}

pub async fn fees(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    match market_rows(&state) {
        Ok(rows) => {
            let markets = rows.into_iter().map(|(view, _)| view).collect();
            render(StatusCode::OK, &FeesPage { chrome, markets })
        }
        Err(e) => error_page(chrome, e),
    }
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    chrome: Chrome,
    h: Health,
    markets: Vec<MarketView>,
}

pub async fn status(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let h = health_of(&state).await;
    let code = if h.status == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    match market_rows(&state) {
        Ok(rows) => {
            let markets = rows.into_iter().map(|(view, _)| view).collect();
            render(code, &StatusPage { chrome, h, markets })
        }
        Err(e) => error_page(chrome, e),
    }
}

// ---- the API reference -------------------------------------------------------------------

/// A type as the reference shows it, linked to its schema when it names one.
pub struct TypeRef {
    pub text: String,
    pub link: String,
}

pub struct Param {
    pub name: String,
    pub place: String,
    pub required: bool,
    pub ty: TypeRef,
    pub description: String,
}

pub struct Reply {
    pub status: String,
    pub description: String,
    pub ty: Option<TypeRef>,
}

pub struct Operation {
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub auth: String,
    pub params: Vec<Param>,
    pub body: Option<TypeRef>,
    pub replies: Vec<Reply>,
}

pub struct Group {
    pub name: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

pub struct Field {
    pub name: String,
    pub required: bool,
    pub ty: TypeRef,
    pub description: String,
}

pub struct Schema {
    pub name: String,
    pub description: String,
    /// For a string enum: its values.
    pub values: String,
    pub fields: Vec<Field>,
}

pub struct Scheme {
    pub name: String,
    pub place: String,
    pub description: String,
}

pub struct Reference {
    pub title: String,
    pub description: String,
    pub version: String,
    pub schemes: Vec<Scheme>,
    pub groups: Vec<Group>,
    pub schemas: Vec<Schema>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// HTML-escapes `s` and turns `` `code` `` spans into `<code>`: the document's descriptions
/// are our own text written with Markdown code spans.
pub fn prose(s: &str) -> String {
    let escaped = askama::filters::escape(s, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default();
    let mut out = String::with_capacity(escaped.len());
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn type_ref(schema: &Value) -> TypeRef {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r).to_string();
        return TypeRef { link: format!("#schema-{name}"), text: name };
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<TypeRef> = list.iter().map(type_ref).collect();
            let link = parts.iter().map(|p| p.link.clone()).find(|l| !l.is_empty());
            let text = parts.into_iter().map(|p| p.text).collect::<Vec<_>>().join(" or ");
            return TypeRef { text, link: link.unwrap_or_default() };
        }
    }
    let kinds: Vec<String> = match schema.get("type") {
        Some(Value::String(k)) => vec![k.clone()],
        Some(Value::Array(ks)) => ks.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let mut link = String::new();
    let names: Vec<String> = kinds
        .iter()
        .map(|k| match k.as_str() {
            "array" => {
                let inner = schema
                    .get("items")
                    .map(type_ref)
                    .unwrap_or(TypeRef { text: "any".into(), link: String::new() });
                link = inner.link;
                format!("array of {}", inner.text)
            }
            other => match schema.get("format").and_then(Value::as_str) {
                Some(f) => format!("{other} ({f})"),
                None => other.to_string(),
            },
        })
        .collect();
    let text = if names.is_empty() { "any".to_string() } else { names.join(" or ") };
    TypeRef { text, link }
}

fn json_body(v: &Value) -> Option<TypeRef> {
    v.get("content")?.as_object()?.values().next()?.get("schema").map(type_ref)
}

fn operation(method: &str, path: &str, op: &Value) -> Operation {
    let params = op
        .get("parameters")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| Param {
                    name: text(p, "name"),
                    place: text(p, "in"),
                    required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                    ty: p
                        .get("schema")
                        .map(type_ref)
                        .unwrap_or(TypeRef { text: "any".into(), link: String::new() }),
                    description: prose(&text(p, "description")),
                })
                .collect()
        })
        .unwrap_or_default();
    let replies = op
        .get("responses")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(status, r)| Reply {
                    status: status.clone(),
                    description: prose(&text(r, "description")),
                    ty: json_body(r),
                })
                .collect()
        })
        .unwrap_or_default();
    let auth = op
        .get("security")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().cloned())
                .collect::<Vec<_>>()
                .join(" or ")
        })
        .unwrap_or_default();
    let method = method.to_ascii_uppercase();
    let anchor: String = format!("{method}-{path}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    Operation {
        anchor,
        method,
        path: path.to_string(),
        summary: prose(&text(op, "summary")),
        description: prose(&text(op, "description")),
        auth,
        params,
        body: op.get("requestBody").and_then(json_body),
        replies,
    }
}

fn reference(doc: &Value) -> Reference {
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let mut groups: Vec<Group> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .map(|t| Group {
                    name: text(t, "name"),
                    description: prose(&text(t, "description")),
                    operations: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let tag = op
                .get("tags")
                .and_then(Value::as_array)
                .and_then(|t| t.first())
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string();
            let op = operation(method, path, op);
            match groups.iter_mut().find(|g| g.name == tag) {
                Some(group) => group.operations.push(op),
                None => groups.push(Group {
                    name: tag,
                    description: String::new(),
                    operations: vec![op],
                }),
            }
        }
    }
    let components = doc.get("components").cloned().unwrap_or(Value::Null);
    let schemes = components
        .get("securitySchemes")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(name, s)| Scheme {
                    name: name.clone(),
                    place: format!("{} {}", text(s, "in"), text(s, "name")),
                    description: prose(&text(s, "description")),
                })
                .collect()
        })
        .unwrap_or_default();
    let schemas = components
        .get("schemas")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(name, s)| {
                    let required: Vec<&str> = s
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let fields = s
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|props| {
                            props
                                .iter()
                                .map(|(field, p)| Field {
                                    name: field.clone(),
                                    required: required.contains(&field.as_str()),
                                    ty: type_ref(p),
                                    description: prose(&text(p, "description")),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let values = s
                        .get("enum")
                        .and_then(Value::as_array)
                        .map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    Schema {
                        name: name.clone(),
                        description: prose(&text(s, "description")),
                        values,
                        fields,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Reference {
        title: text(&info, "title"),
        description: prose(&text(&info, "description")),
        version: text(&info, "version"),
        schemes,
        groups,
        schemas,
    }
}

/// Built once from the document (it never changes while the server runs).
static REFERENCE: LazyLock<Reference> = LazyLock::new(|| {
    let doc = serde_json::to_value(crate::api::openapi::document()).unwrap_or(Value::Null);
    reference(&doc)
});

#[derive(Template)]
#[template(path = "api.html")]
struct ApiPage {
    chrome: Chrome,
    r: &'static Reference,
}

pub async fn api(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    render(StatusCode::OK, &ApiPage { chrome, r: &REFERENCE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_escapes_then_marks_code() {
        assert_eq!(prose("a `b<c>` & d"), "a <code>b&#60;c&#62;</code> &#38; d");
    }

    #[test]
    fn every_route_and_schema_is_in_the_reference() {
        let doc = serde_json::to_value(crate::api::openapi::document()).unwrap();
        let r = reference(&doc);
        let operations: usize = r.groups.iter().map(|g| g.operations.len()).sum();
        let in_doc: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, in_doc);
        assert!(r.schemas.iter().any(|s| s.name == "OrderView" && !s.fields.is_empty()));
        assert!(r.schemas.iter().any(|s| s.name == "Side" && s.values.contains("buy")));
        let place = r
            .groups
            .iter()
            .flat_map(|g| &g.operations)
            .find(|o| o.method == "POST" && o.path == "/api/v1/orders")
            .unwrap();
        assert_eq!(place.body.as_ref().unwrap().link, "#schema-PlaceRequest");
        assert!(place.replies.iter().any(|x| x.status == "201"));
        assert!(place.auth.contains("api_key"));
    }
}
