//! The OpenAPI document at `/api/v1/openapi.json`: it is OpenAPI 3, documents every route of
//! the route table (and nothing else), and every response of a real scenario — successes and
//! errors — matches the schema the document declares for its path, method and status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const ROUTE_TABLE: &str = include_str!("../src/api/mod.rs");
const PREFIX: &str = "/api/v1";
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(method, path, router)` for every `.route("PATH", get(..).post(..))` in the route table;
/// `router` is the `let NAME = Router::new()` the route belongs to (`public`, or a guarded one).
fn routes_in_source(source: &str) -> BTreeSet<(String, String, String)> {
    let mut routes = BTreeSet::new();
    let mut router = String::new();
    let mut rest = source;
    loop {
        let next_route = rest.find(".route(\"");
        let next_let = rest.find("let ").filter(|i| rest[*i..].contains("Router::new()"));
        let Some(at) = next_route else { break };
        if let Some(l) = next_let
            && l < at
        {
            let name: String =
                rest[l + 4..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let assigned = rest[l..].split(';').next().unwrap();
            if assigned.contains("Router::new()") {
                router = name;
            }
            rest = &rest[l + 4..];
            continue;
        }
        let call = &rest[at + ".route(\"".len()..];
        let path_end = call.find('"').unwrap();
        let path = &call[..path_end];
        // The handler expression: up to the `)` that closes `.route(`.
        let mut depth = 1;
        let mut end = path_end;
        for (i, c) in call.char_indices().skip(path_end) {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let handlers = &call[path_end..end];
        let mut found = 0;
        for method in METHODS {
            let needle = format!("{method}(");
            for (i, _) in handlers.match_indices(&needle) {
                let before = handlers[..i].chars().last().unwrap_or(' ');
                if !(before.is_alphanumeric() || before == '_' || before == ':') {
                    routes.insert((method.to_string(), path.to_string(), router.clone()));
                    found += 1;
                }
            }
        }
        assert!(found > 0, "no method in the route {path}: {handlers}");
        rest = &call[end..];
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

// ---- a validator for the JSON Schema subset utoipa emits -------------------------------------

/// Keywords that do not constrain an instance.
const ANNOTATIONS: [&str; 9] = [
    "description",
    "format",
    "title",
    "example",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("remote $ref {reference}"));
    doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

fn type_matches(name: &str, value: &Value) -> Result<bool, String> {
    Ok(match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => return Err(format!("unknown type {other:?}")),
    })
}

/// Checks `value` against `schema` (resolving `$ref`s into `doc`). Strict about objects: a
/// property the schema does not declare is an error (the document must name every field), and
/// a keyword this validator does not know is an error (never silently ignored).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if schema == &Value::Bool(true) {
        return Ok(());
    }
    let schema = schema.as_object().ok_or_else(|| format!("{at}: schema is not an object"))?;
    for (keyword, rule) in schema {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => validate(doc, resolve(doc, rule.as_str().unwrap()), value, at)?,
            "type" => {
                let names: Vec<&str> = match rule {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().map(|t| t.as_str().unwrap()).collect(),
                    _ => return Err(format!("{at}: bad type {rule}")),
                };
                let mut ok = false;
                for name in &names {
                    ok |= type_matches(name, value)?;
                }
                if !ok {
                    return Err(format!("{at}: expected {names:?}, got {value}"));
                }
            }
            "nullable" => {}
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != value {
                    return Err(format!("{at}: {value} is not {rule}"));
                }
            }
            "minimum" => {
                if let Some(n) = value.as_f64()
                    && n < rule.as_f64().unwrap()
                {
                    return Err(format!("{at}: {value} < {rule}"));
                }
            }
            "maximum" => {
                if let Some(n) = value.as_f64()
                    && n > rule.as_f64().unwrap()
                {
                    return Err(format!("{at}: {value} > {rule}"));
                }
            }
            "minItems" | "maxItems" => {
                if let Some(items) = value.as_array() {
                    let bound = rule.as_u64().unwrap() as usize;
                    let bad = if keyword == "minItems" {
                        items.len() < bound
                    } else {
                        items.len() > bound
                    };
                    if bad {
                        return Err(format!(
                            "{at}: {} items breaks {keyword} {bound}",
                            items.len()
                        ));
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().unwrap() {
                        if !object.contains_key(name.as_str().unwrap()) {
                            return Err(format!("{at}: missing required field {name}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    let properties = rule.as_object().unwrap();
                    for (name, field) in object {
                        match properties.get(name) {
                            Some(s) => validate(doc, s, field, &format!("{at}.{name}"))?,
                            None if schema.contains_key("additionalProperties") => {}
                            None => return Err(format!("{at}: undocumented field {name:?}")),
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    let declared = schema.get("properties").and_then(Value::as_object);
                    for (name, field) in object {
                        if declared.is_some_and(|d| d.contains_key(name)) {
                            continue;
                        }
                        if rule == &Value::Bool(false) {
                            return Err(format!("{at}: field {name:?} is not allowed"));
                        }
                        validate(doc, rule, field, &format!("{at}.{name}"))?;
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    let skip =
                        schema.get("prefixItems").and_then(Value::as_array).map_or(0, Vec::len);
                    for (i, item) in items.iter().enumerate().skip(skip) {
                        validate(doc, rule, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "prefixItems" => {
                if let Some(items) = value.as_array() {
                    for (i, (s, item)) in rule.as_array().unwrap().iter().zip(items).enumerate() {
                        validate(doc, s, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "allOf" => {
                for s in rule.as_array().unwrap() {
                    validate(doc, s, value, at)?;
                }
            }
            "anyOf" => {
                let errors: Vec<String> = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|s| validate(doc, s, value, at).err())
                    .collect();
                if errors.len() == rule.as_array().unwrap().len() {
                    return Err(format!("{at}: matches no anyOf: {errors:?}"));
                }
            }
            "oneOf" => {
                let matching = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| validate(doc, s, value, at).is_ok())
                    .count();
                if matching != 1 {
                    return Err(format!("{at}: matches {matching} oneOf schemas, not 1: {value}"));
                }
            }
            other => return Err(format!("{at}: the validator does not know {other:?}")),
        }
    }
    Ok(())
}

fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][format!("{PREFIX}{path}")][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let response = &op["responses"][status.to_string()];
    assert!(response.is_object(), "{method} {path}: status {status} is not documented");
    let schema = &response["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} {status}: no JSON schema");
    schema
}

/// Validates real responses and remembers which operations answered with a success.
struct Checker {
    doc: Value,
    succeeded: BTreeSet<(String, String)>,
    statuses: BTreeMap<(String, String), BTreeSet<u16>>,
}

impl Checker {
    /// `path` is the route's template (`/orders/{id}`), without the prefix.
    fn check(&mut self, method: &Method, path: &str, (status, body): &(u16, Value)) {
        let method = method.as_str().to_ascii_lowercase();
        let schema = response_schema(&self.doc, path, &method, *status);
        if let Err(e) = validate(&self.doc, schema, body, "$") {
            panic!("{method} {path} {status}: the body does not match its schema: {e}\n{body}");
        }
        if (200..300).contains(status) {
            self.succeeded.insert((method.clone(), format!("{PREFIX}{path}")));
        }
        self.statuses.entry((method, path.to_string())).or_default().insert(*status);
    }
}

async fn send(
    http: &reqwest::Client,
    method: Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[test]
fn the_route_table_parser_finds_every_route() {
    let routes = routes_in_source(ROUTE_TABLE);
    // Spot checks, so a parser that finds nothing cannot pass the coverage test.
    assert!(routes.len() >= 29, "{routes:?}");
    for (method, path) in [
        ("get", "/time"),
        ("post", "/orders"),
        ("delete", "/orders"),
        ("get", "/api-keys"),
        ("post", "/api-keys"),
        ("delete", "/orders/by-client-id/{client_order_id}"),
    ] {
        assert!(routes.iter().any(|(m, p, _)| m == method && p == path), "{method} {path}");
    }
}

async fn fetch_document(app: &App) -> Value {
    let r = reqwest::get(format!("{}{PREFIX}/openapi.json", app.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_rejects_what_does_not_match() {
    let app = App::spawn(Backend::Sqlite).await;
    let doc = fetch_document(&app).await;
    let schema = json!({"$ref": "#/components/schemas/OrdersPage"});
    let order = json!({"id": 7, "market": "BTC-USDT", "side": "buy", "type": "limit",
        "time_in_force": "gtc", "price": "1", "quantity": "1", "client_order_id": null,
        "stp": "expire_taker", "status": "open", "end_reason": null, "filled_quantity": "0",
        "filled_quote": "0", "fee": "0", "fee_asset": "USDT", "created_ms": 1, "updated_ms": 1});
    let good = json!({"orders": [order], "next": null});
    validate(&doc, &schema, &good, "$").unwrap();
    validate(&doc, &schema, &json!({"orders": [], "next": 5}), "$").unwrap();

    let mut missing = good.clone();
    missing["orders"][0].as_object_mut().unwrap().remove("status");
    let e = validate(&doc, &schema, &missing, "$").unwrap_err();
    assert!(e.contains("missing required field"), "{e}");

    let mut wrong_type = good.clone();
    wrong_type["orders"][0]["id"] = json!("7");
    assert!(validate(&doc, &schema, &wrong_type, "$").is_err());

    let mut not_nullable = good.clone();
    not_nullable["orders"][0]["market"] = Value::Null;
    assert!(validate(&doc, &schema, &not_nullable, "$").is_err());

    let mut not_a_side = good.clone();
    not_a_side["orders"][0]["side"] = json!("up");
    assert!(validate(&doc, &schema, &not_a_side, "$").is_err());

    let mut not_a_reason = good.clone();
    not_a_reason["orders"][0]["end_reason"] = json!("bored");
    assert!(validate(&doc, &schema, &not_a_reason, "$").is_err());

    let mut extra = good.clone();
    extra["orders"][0]["secret"] = json!("x");
    let e = validate(&doc, &schema, &extra, "$").unwrap_err();
    assert!(e.contains("undocumented field"), "{e}");

    assert!(validate(&doc, &schema, &json!({"orders": {}, "next": null}), "$").is_err());
    assert!(validate(&doc, &schema, &json!({"orders": [], "next": "x"}), "$").is_err());
    assert!(validate(&doc, &schema, &json!({"next": null}), "$").is_err());

    let depth = json!({"$ref": "#/components/schemas/Depth"});
    validate(
        &doc,
        &depth,
        &json!({"market": "X", "update_id": 1, "bids": [["1", "2"]], "asks": []}),
        "$",
    )
    .unwrap();
    assert!(
        validate(
            &doc,
            &depth,
            &json!({"market": "X", "update_id": 1, "bids": [[1, 2]], "asks": []}),
            "$"
        )
        .is_err()
    );
    let level = json!({"market": "X", "update_id": 1, "bids": [["1", "2", "3"]], "asks": []});
    assert!(validate(&doc, &depth, &level, "$").is_err());
    let negative = json!({"market": "X", "update_id": -1, "bids": [], "asks": []});
    assert!(validate(&doc, &depth, &negative, "$").is_err());
    let error = json!({"$ref": "#/components/schemas/ErrorBody"});
    validate(&doc, &error, &json!({"code": "x", "message": "y"}), "$").unwrap();
    assert!(validate(&doc, &error, &json!({"code": "x"}), "$").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_covers_every_route_and_every_response_matches_it() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let url = |path: &str| format!("{}{PREFIX}{path}", app.url);
    let anonymous = reqwest::Client::new();

    // (1) Served over HTTP, OpenAPI 3.
    let doc = fetch_document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-KEY");
    assert!(schemes["api_key"]["description"].as_str().unwrap().contains("HMAC-SHA256"));
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "bourse_session");

    // (2) Every route is documented, nothing else is, and private routes declare security.
    let routes = routes_in_source(ROUTE_TABLE);
    let in_router: BTreeSet<(String, String)> =
        routes.iter().map(|(m, p, _)| (m.clone(), format!("{PREFIX}{p}"))).collect();
    let in_doc = documented(&doc);
    let undocumented: Vec<_> = in_router.difference(&in_doc).collect();
    assert!(undocumented.is_empty(), "routes missing from the document: {undocumented:?}");
    let ghosts: Vec<_> = in_doc.difference(&in_router).collect();
    assert!(ghosts.is_empty(), "documented operations with no route: {ghosts:?}");
    for (method, path, router) in &routes {
        let op = &doc["paths"][format!("{PREFIX}{path}")][method.as_str()];
        let schemes: BTreeSet<&str> = op["security"]
            .as_array()
            .map(|list| {
                list.iter()
                    .flat_map(|s| s.as_object().unwrap().keys().map(String::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let expected: BTreeSet<&str> = match router.as_str() {
            "public" => BTreeSet::new(),
            "session_only" => ["session"].into(),
            _ => ["api_key", "session"].into(),
        };
        assert_eq!(schemes, expected, "{method} {path} (router {router})");
        // Path parameters are declared.
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let declared = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true);
                assert!(declared, "{method} {path}: path parameter {name} is not declared");
            }
        }
        assert!(!op["tags"].as_array().unwrap().is_empty(), "{method} {path} has no tag");
    }

    // (3) Real responses match their schemas.
    let mut c = Checker { doc: doc.clone(), succeeded: BTreeSet::new(), statuses: BTreeMap::new() };
    let get = Method::GET;
    let post = Method::POST;
    let delete = Method::DELETE;
    c.check(&get, "/openapi.json", &(200, doc.clone()));
    for path in ["/time", "/health", "/assets", "/markets", "/tickers"] {
        let r = send(&anonymous, get.clone(), url(path), None).await;
        assert_eq!(r.0, 200, "{path}: {}", r.1);
        c.check(&get, path, &r);
    }
    for (path, template, status) in [
        ("/markets/BTC-USDT/ticker", "/markets/{market}/ticker", 200),
        ("/markets/NOPE-USDT/ticker", "/markets/{market}/ticker", 404),
        ("/markets/BTC-USDT/depth?limit=5", "/markets/{market}/depth", 200),
        ("/markets/BTC-USDT/depth?limit=many", "/markets/{market}/depth", 400),
        ("/markets/NOPE-USDT/depth", "/markets/{market}/depth", 404),
        ("/markets/BTC-USDT/trades", "/markets/{market}/trades", 200),
        ("/markets/NOPE-USDT/trades", "/markets/{market}/trades", 404),
        ("/markets/BTC-USDT/candles?interval=1m", "/markets/{market}/candles", 200),
        ("/markets/BTC-USDT/candles?interval=7m", "/markets/{market}/candles", 400),
        ("/markets/BTC-USDT/candles", "/markets/{market}/candles", 400),
    ] {
        let r = send(&anonymous, get.clone(), url(path), None).await;
        assert_eq!(r.0, status, "{path}: {}", r.1);
        c.check(&get, template, &r);
    }

    // Accounts: signup, verification and login, with their errors.
    let carol = cookie_client();
    let password = "a long enough passphrase";
    let creds = json!({"email": "carol@example.com", "password": password});
    for (path, body, status) in [
        ("/auth/signup", json!({"email": "carol@example.com"}), 400),
        ("/auth/signup", json!({"email": "carol", "password": password}), 400),
        ("/auth/signup", creds.clone(), 202),
        ("/auth/verify", json!({"token": "nope"}), 400),
        ("/auth/login", creds.clone(), 403),
    ] {
        let r = send(&carol, post.clone(), url(path), Some(body)).await;
        assert_eq!(r.0, status, "{path}: {}", r.1);
        c.check(&post, path, &r);
    }
    let r = carol.post(url("/auth/signup")).body("{}").send().await.unwrap();
    let r = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_eq!(r.0, 415, "{}", r.1);
    c.check(&post, "/auth/signup", &r);
    let mail = app.mail_with("carol@example.com", "/verify?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    let r = send(&carol, post.clone(), url("/auth/verify"), Some(json!({"token": token}))).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&post, "/auth/verify", &r);
    // Password reset (to the same password, so the rest goes on as it was).
    let r =
        send(&carol, post.clone(), url("/auth/password-reset"), Some(json!({"email": "carol"})))
            .await;
    assert_eq!(r.0, 400, "{}", r.1);
    c.check(&post, "/auth/password-reset", &r);
    let r = send(
        &carol,
        post.clone(),
        url("/auth/password-reset"),
        Some(json!({"email": "carol@example.com"})),
    )
    .await;
    assert_eq!(r.0, 202, "{}", r.1);
    c.check(&post, "/auth/password-reset", &r);
    let mail = app.mail_with("carol@example.com", "/reset?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    let confirm = "/auth/password-reset/confirm";
    for (body, status) in [
        (json!({"token": "nope", "password": password}), 400),
        (json!({"token": token, "password": "short"}), 400),
        (json!({"token": token, "password": password}), 200),
    ] {
        let r = send(&carol, post.clone(), url(confirm), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, confirm, &r);
    }
    let wrong = json!({"email": "carol@example.com", "password": "not the passphrase"});
    let r = send(&carol, post.clone(), url("/auth/login"), Some(wrong)).await;
    assert_eq!(r.0, 401, "{}", r.1);
    c.check(&post, "/auth/login", &r);
    let r = send(&carol, post.clone(), url("/auth/login"), Some(creds.clone())).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&post, "/auth/login", &r);
    let carol_id = r.1["user_id"].as_u64().unwrap();

    // Session-only routes.
    let r = send(&anonymous, get.clone(), url("/sessions"), None).await;
    assert_eq!(r.0, 401, "{}", r.1);
    c.check(&get, "/sessions", &r);
    for path in ["/me", "/sessions", "/api-keys"] {
        let r = send(&carol, get.clone(), url(path), None).await;
        assert_eq!(r.0, 200, "{path}: {}", r.1);
        c.check(&get, path, &r);
    }
    let second = cookie_client();
    let r = send(&second, post.clone(), url("/auth/login"), Some(creds.clone())).await;
    let second_session = r.1["session_id"].as_i64().unwrap();
    let r = send(&carol, get.clone(), url("/sessions"), None).await;
    assert_eq!(r.1.as_array().unwrap().len(), 2, "{}", r.1);
    c.check(&get, "/sessions", &r);
    let r = send(&carol, get.clone(), url("/security-events?limit=5"), None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert!(!r.1["events"].as_array().unwrap().is_empty(), "{}", r.1);
    c.check(&get, "/security-events", &r);
    let r = send(&carol, get.clone(), url("/security-events?limit=x"), None).await;
    assert_eq!(r.0, 400, "{}", r.1);
    c.check(&get, "/security-events", &r);
    let r = send(
        &anonymous,
        post.clone(),
        url("/auth/sign-out-everywhere"),
        Some(json!({"token": "nope"})),
    )
    .await;
    assert_eq!(r.0, 400, "{}", r.1);
    c.check(&post, "/auth/sign-out-everywhere", &r);
    for (path, status) in [
        (format!("/sessions/{second_session}"), 200),
        (format!("/sessions/{second_session}"), 404),
        ("/sessions/abc".to_string(), 400),
    ] {
        let r = send(&carol, delete.clone(), url(&path), None).await;
        assert_eq!(r.0, status, "{path}: {}", r.1);
        c.check(&delete, "/sessions/{id}", &r);
    }
    let new_key = |scopes: Value| json!({"label": "openapi", "scopes": scopes});
    let r = send(&carol, post.clone(), url("/api-keys"), Some(new_key(json!(["fly"])))).await;
    assert_eq!(r.0, 400, "{}", r.1);
    c.check(&post, "/api-keys", &r);
    let r = send(&carol, post.clone(), url("/api-keys"), Some(new_key(json!(["read"])))).await;
    assert_eq!(r.0, 201, "{}", r.1);
    c.check(&post, "/api-keys", &r);
    let read_key = r.1["key"].as_i64().unwrap();
    let r = send(&carol, post.clone(), url("/api-keys"), Some(new_key(json!(["trade"])))).await;
    assert_eq!(r.0, 201, "{}", r.1);
    c.check(&post, "/api-keys", &r);
    let carol_key =
        (r.1["api_key"].as_str().unwrap().to_string(), r.1["secret"].as_str().unwrap().to_string());
    let r = send(&carol, get.clone(), url("/api-keys"), None).await;
    c.check(&get, "/api-keys", &r);
    for (id, status) in [(read_key, 200), (read_key, 404)] {
        let r = send(&carol, delete.clone(), url(&format!("/api-keys/{id}")), None).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&delete, "/api-keys/{id}", &r);
    }
    let carol = User {
        http: carol,
        base: app.url.clone(),
        email: "carol@example.com".into(),
        id: carol_id,
        key: Some(carol_key),
    };
    let r = carol.signed(get.clone(), "/api/v1/sessions", "", None).await;
    assert_eq!(r.0, 403, "{}", r.1);
    c.check(&get, "/sessions", &r);

    // Trading, signed with API keys.
    let mut dave = register(&app, "dave@example.com").await;
    dave.create_key(&["trade"]).await;
    deposit(&app, carol.id, "BTC", "2").await;
    deposit(&app, dave.id, "USDT", "100000").await;
    let order = |side: &str, price: &str, quantity: &str, cid: &str| {
        json!({"market": "BTC-USDT", "side": side, "type": "limit", "price": price,
            "quantity": quantity, "client_order_id": cid})
    };
    let r = carol
        .signed(post.clone(), "/api/v1/orders", "", Some(order("sell", "60000", "0.5", "c-1")))
        .await;
    assert_eq!(r.0, 201, "{}", r.1);
    c.check(&post, "/orders", &r);
    let first = r.1["order"]["id"].as_u64().unwrap();
    let market_buy =
        json!({"market": "BTC-USDT", "side": "buy", "type": "market", "quantity": "0.1"});
    let r = dave.signed(post.clone(), "/api/v1/orders", "", Some(market_buy)).await;
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(r.1["fills"].as_array().unwrap().len(), 1, "{}", r.1);
    c.check(&post, "/orders", &r);
    for (body, status) in [
        (json!({"market": "BTC-USDT"}), 400),
        (order("sell", "60000.123456789", "0.5", "c-x"), 400),
        (order("sell", "60000", "0.5", "c-1"), 409),
        (order("sell", "61000", "100", "c-y"), 400),
        (json!({"market": "NOPE-USDT", "side": "buy", "type": "market", "quantity": "1"}), 404),
    ] {
        let r = carol.signed(post.clone(), "/api/v1/orders", "", Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, "/orders", &r);
    }
    let reads = [
        ("/me", "", "/me", 200),
        ("/balances", "", "/balances", 200),
        ("/orders", "", "/orders", 200),
        ("/orders", "status=open&limit=1", "/orders", 200),
        ("/orders", "client_order_id=c-1", "/orders", 200),
        ("/orders", "status=done", "/orders", 400),
        ("/orders", "market=NOPE-USDT", "/orders", 404),
        (&format!("/orders/{first}"), "", "/orders/{id}", 200),
        ("/orders/999999", "", "/orders/{id}", 404),
        ("/orders/abc", "", "/orders/{id}", 400),
        ("/fills", "", "/fills", 200),
        ("/fills", "limit=1", "/fills", 200),
        ("/fills", "before=bad", "/fills", 400),
        ("/ledger", "", "/ledger", 200),
        ("/ledger", "asset=BTC&limit=1", "/ledger", 200),
        ("/ledger", "asset=NOPE", "/ledger", 404),
    ];
    for (path, query, template, status) in reads {
        let r = carol.signed(get.clone(), &format!("{PREFIX}{path}"), query, None).await;
        assert_eq!(r.0, status, "{path}?{query}: {}", r.1);
        c.check(&get, template, &r);
    }
    let r = send(&anonymous, get.clone(), url("/balances"), None).await;
    assert_eq!(r.0, 401, "{}", r.1);
    c.check(&get, "/balances", &r);
    let r = send(&carol.http, get.clone(), url("/balances"), None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&get, "/balances", &r);

    // Cancels.
    let by_cid = "/orders/by-client-id/{client_order_id}";
    for (query, status) in [("market=BTC-USDT", 200), ("market=BTC-USDT", 404), ("", 400)] {
        let r = carol.signed(delete.clone(), "/api/v1/orders/by-client-id/c-1", query, None).await;
        assert_eq!(r.0, status, "{query}: {}", r.1);
        c.check(&delete, by_cid, &r);
    }
    let r = carol
        .signed(post.clone(), "/api/v1/orders", "", Some(order("sell", "62000", "0.1", "c-2")))
        .await;
    let second_order = r.1["order"]["id"].as_u64().unwrap();
    for status in [200, 404] {
        let path = format!("/api/v1/orders/{second_order}");
        let r = carol.signed(delete.clone(), &path, "", None).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&delete, "/orders/{id}", &r);
    }
    for cid in ["c-3", "c-4"] {
        let r = carol
            .signed(post.clone(), "/api/v1/orders", "", Some(order("sell", "63000", "0.1", cid)))
            .await;
        assert_eq!(r.0, 201, "{}", r.1);
    }
    for (query, status, canceled) in
        [("market=NOPE-USDT", 404, 0), ("market=BTC-USDT", 200, 2), ("", 200, 0)]
    {
        let r = carol.signed(delete.clone(), "/api/v1/orders", query, None).await;
        assert_eq!(r.0, status, "{}", r.1);
        if status == 200 {
            assert_eq!(r.1["canceled"].as_array().unwrap().len(), canceled, "{}", r.1);
        }
        c.check(&delete, "/orders", &r);
    }

    // Fills and ledger after the trade, and a ticker with a last price.
    let r = dave.signed(get.clone(), "/api/v1/fills", "market=BTC-USDT", None).await;
    assert_eq!(r.1["fills"].as_array().unwrap().len(), 1, "{}", r.1);
    c.check(&get, "/fills", &r);
    for (path, template) in [
        ("/markets/BTC-USDT/ticker", "/markets/{market}/ticker"),
        ("/markets/BTC-USDT/trades", "/markets/{market}/trades"),
        ("/markets/BTC-USDT/candles?interval=1m", "/markets/{market}/candles"),
        ("/tickers", "/tickers"),
    ] {
        let r = send(&anonymous, get.clone(), url(path), None).await;
        assert_eq!(r.0, 200, "{path}: {}", r.1);
        c.check(&get, template, &r);
    }

    // Deposits: with a wallet for LTC, on a real litecoind (the server restarts with it).
    let node = bourse_wallet::testing::Node::start().await;
    node.rpc(None).create_wallet("hot").await.unwrap();
    let mut app = app;
    app.stop().await;
    for (key, value) in [
        ("RPC_URL", format!("http://127.0.0.1:{}", node.rpc_port)),
        ("RPC_USER", "test".into()),
        ("RPC_PASSWORD", "test".into()),
        ("WALLET", "hot".into()),
    ] {
        app.extra_env.push((format!("BOURSE_WALLETS__LTC__{key}"), value));
    }
    app.start().await;
    let url = |path: &str| format!("{}{PREFIX}{path}", app.url);
    let r = send(&carol.http, get.clone(), url("/deposits?asset=LTC"), None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&get, "/deposits", &r);
    for (asset, status) in [("BTC", 404), ("NOPE", 404), ("LTC", 201)] {
        let body = json!({"asset": asset});
        let r = send(&carol.http, post.clone(), url("/deposit-addresses"), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, "/deposit-addresses", &r);
    }
    let r = send(&carol.http, get.clone(), url("/deposit-addresses?asset=LTC"), None).await;
    assert_eq!((r.0, r.1.as_array().map(Vec::len)), (200, Some(1)), "{}", r.1);
    c.check(&get, "/deposit-addresses", &r);
    let to = r.1[0]["address"].as_str().unwrap().to_string();
    common::deposit(&app, carol_id, "LTC", "1").await;
    // Carol reset her password above: her withdrawals are locked for a day.
    let body = json!({"asset": "LTC", "address": to, "amount": "0.5"});
    let r = send(&carol.http, post.clone(), url("/withdrawals"), Some(body)).await;
    assert_eq!((r.0, r.1["code"].as_str()), (403, Some("withdrawals_locked")), "{}", r.1);
    c.check(&post, "/withdrawals", &r);
    let erin = register(&app, "erin@example.com").await;
    common::deposit(&app, erin.id, "LTC", "1").await;
    for (amount, status) in [("0.5", 201), ("5", 400), ("0.000000001", 400)] {
        let body = json!({"asset": "LTC", "address": to, "amount": amount});
        let r = send(&erin.http, post.clone(), url("/withdrawals"), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, "/withdrawals", &r);
    }
    let r = send(&erin.http, get.clone(), url("/withdrawals"), None).await;
    assert_eq!(r.1["withdrawals"].as_array().map(Vec::len), Some(1), "{}", r.1);
    c.check(&get, "/withdrawals", &r);
    // The withdrawal waits for its mailed link, which works once.
    let mail = app.mail_with("erin@example.com", "/confirm-withdrawal?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    for status in [200, 400] {
        let body = json!({"token": token});
        let r = send(&anonymous, post.clone(), url("/withdrawals/confirm"), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, "/withdrawals/confirm", &r);
    }

    // Two-factor authentication on, then off.
    let r = send(&erin.http, post.clone(), url("/two-factor/setup"), None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&post, "/two-factor/setup", &r);
    let secret = r.1["secret"].as_str().unwrap().as_bytes().to_vec();
    let secret = data_encoding::BASE32_NOPAD.decode(&secret).unwrap();
    let now_s = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    )
    .unwrap();
    let code = bourse_server::totp::code_at(&secret, bourse_server::totp::step_of(now_s));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for (code, status) in [(wrong, 403), (code.as_str(), 200)] {
        let body = json!({"code": code});
        let r = send(&erin.http, post.clone(), url("/two-factor/enable"), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, "/two-factor/enable", &r);
    }
    let r = send(&erin.http, post.clone(), url("/two-factor/setup"), None).await;
    assert_eq!(r.0, 409, "{}", r.1);
    c.check(&post, "/two-factor/setup", &r);
    let body = json!({"code": "123456"});
    let r = send(&erin.http, post.clone(), url("/two-factor/enable"), Some(body)).await;
    assert_eq!(r.0, 409, "already on: {}", r.1);
    c.check(&post, "/two-factor/enable", &r);
    let body = json!({"password": "not the passphrase", "code": "123456"});
    let r = send(&erin.http, post.clone(), url("/two-factor/disable"), Some(body)).await;
    assert_eq!((r.0, r.1["code"].as_str()), (403, Some("bad_password")), "{}", r.1);
    c.check(&post, "/two-factor/disable", &r);
    // The next step's code (the one that turned it on is used).
    let next = bourse_server::totp::code_at(&secret, bourse_server::totp::step_of(now_s) + 1);
    let body = json!({"password": common::PASSWORD, "code": next});
    let r = send(&erin.http, post.clone(), url("/two-factor/disable"), Some(body)).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&post, "/two-factor/disable", &r);

    // The withdrawal-address whitelist.
    let r = send(&erin.http, get.clone(), url("/withdrawal-addresses"), None).await;
    assert_eq!((r.0, &r.1["enabled"]), (200, &json!(false)), "{}", r.1);
    c.check(&get, "/withdrawal-addresses", &r);
    for (asset, address, status) in
        [("BTC", to.as_str(), 404), ("LTC", "nope", 400), ("LTC", &to, 201), ("LTC", &to, 409)]
    {
        let body = json!({"asset": asset, "address": address, "label": "mine"});
        let r = send(&erin.http, post.clone(), url("/withdrawal-addresses"), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, "/withdrawal-addresses", &r);
    }
    let mail = app.mail_with("erin@example.com", "/confirm-address?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    for status in [200, 400] {
        let body = json!({"token": token});
        let r =
            send(&anonymous, post.clone(), url("/withdrawal-addresses/confirm"), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&post, "/withdrawal-addresses/confirm", &r);
    }
    let put = Method::PUT;
    for (body, status) in [(json!({"enabled": "yes"}), 400), (json!({"enabled": true}), 200)] {
        let r =
            send(&erin.http, put.clone(), url("/withdrawal-addresses/enabled"), Some(body)).await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&put, "/withdrawal-addresses/enabled", &r);
    }
    let r = send(&erin.http, get.clone(), url("/withdrawal-addresses"), None).await;
    assert_eq!(r.1["addresses"][0]["status"], "waiting", "{}", r.1);
    c.check(&get, "/withdrawal-addresses", &r);
    let id = r.1["addresses"][0]["id"].as_i64().unwrap();
    for status in [200, 404] {
        let r = send(&erin.http, delete.clone(), url(&format!("/withdrawal-addresses/{id}")), None)
            .await;
        assert_eq!(r.0, status, "{}", r.1);
        c.check(&delete, "/withdrawal-addresses/{id}", &r);
    }

    // Log out last.
    let r = send(&carol.http, post.clone(), url("/auth/logout"), None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&post, "/auth/logout", &r);
    let r = send(&carol.http, post.clone(), url("/auth/logout"), None).await;
    assert_eq!(r.0, 401, "{}", r.1);
    c.check(&post, "/auth/logout", &r);

    // A login from a browser the account has not seen mails a link that signs out everywhere.
    let stranger = reqwest::Client::builder().user_agent("stranger/1").build().unwrap();
    let r = send(&stranger, post.clone(), url("/auth/login"), Some(creds.clone())).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let mail = app.mail_with("carol@example.com", "/sign-out-everywhere?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    let signout = url("/auth/sign-out-everywhere");
    let r = send(&anonymous, post.clone(), signout, Some(json!({"token": token}))).await;
    assert_eq!(r.0, 200, "{}", r.1);
    c.check(&post, "/auth/sign-out-everywhere", &r);

    // Every documented operation answered with a success that matched its schema.
    let unexercised: Vec<_> = in_doc.difference(&c.succeeded).collect();
    assert!(unexercised.is_empty(), "operations never exercised: {unexercised:?}");
}
