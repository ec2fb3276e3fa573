//! The HTTP side of [`EsReceiver`](super::EsReceiver): routing, auth, faults, content types.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;

use super::bulk::{
    self, BulkResponse, ItemBody, ItemError, Outcome, RequestError, ResponseItem, Template,
};
use super::{ES_VERSION, EsAuth, EsRequest, REQUEST_LOG_LIMIT, Shared, State as St};
use crate::server::StopSignal;

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    stop: StopSignal,
}

pub(super) async fn serve(listener: TcpListener, stop: StopSignal, shared: Arc<Shared>) {
    let ctx = Ctx {
        shared,
        stop: stop.clone(),
    };
    let router = Router::new().fallback(handle).with_state(ctx);
    let mut stop = stop;
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await;
    if let Err(e) = served {
        panic!("es receiver: serve failed: {e}");
    }
}

/// The routes, parsed by hand so that auth, faults and logging are one code path.
enum Route {
    Root,
    Bulk(Option<String>),
    Templates,
    Template(String),
    Unknown,
}

impl Route {
    fn of(path: &str) -> Route {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segs.as_slice() {
            [""] => Route::Root,
            ["_bulk"] => Route::Bulk(None),
            [index, "_bulk"] if !index.is_empty() => Route::Bulk(Some(percent_decode(index))),
            ["_index_template"] => Route::Templates,
            ["_index_template", name] if !name.is_empty() => Route::Template(percent_decode(name)),
            _ => Route::Unknown,
        }
    }

    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Root => &[Method::GET, Method::HEAD],
            Route::Bulk(_) => &[Method::PUT, Method::POST],
            Route::Templates => &[Method::GET, Method::HEAD],
            Route::Template(_) => &[
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::POST,
                Method::DELETE,
            ],
            Route::Unknown => &[],
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the request-level faults decided for one bulk request.
#[derive(Default)]
struct Plan {
    delay: Duration,
    hang: bool,
    drop_response: bool,
    fail: Option<u16>,
    throttle: Option<Duration>,
    fail_after_storing: Option<u16>,
}

struct Reply {
    status: u16,
    headers: Vec<(header::HeaderName, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: &impl Serialize) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn error(err: &RequestError) -> Reply {
        Reply::json(
            err.status,
            &ErrorBody::new(err.kind, &err.reason, None, err.status),
        )
    }

    /// `{"error":"<text>","status":N}`, the short form ES uses for routing and media-type errors.
    fn short_error(status: u16, text: String) -> Reply {
        Reply::json(
            status,
            &serde_json::json!({"error": text, "status": status}),
        )
    }
}

#[derive(Serialize)]
struct AuthHeader {
    #[serde(rename = "WWW-Authenticate")]
    www_authenticate: &'static [&'static str],
}

const WWW_AUTHENTICATE: &[&str] = &[
    "Basic realm=\"security\", charset=\"UTF-8\"",
    "Bearer realm=\"security\"",
    "ApiKey",
];

#[derive(Serialize)]
struct Cause<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<AuthHeader>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    root_cause: [Cause<'a>; 1],
    #[serde(rename = "type")]
    kind: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<AuthHeader>,
}

/// `{"error":{"root_cause":[{"type","reason"}],"type","reason"},"status":N}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
    status: u16,
}

impl<'a> ErrorBody<'a> {
    fn new(kind: &'a str, reason: &'a str, auth: Option<()>, status: u16) -> Self {
        let header = || {
            auth.map(|()| AuthHeader {
                www_authenticate: WWW_AUTHENTICATE,
            })
        };
        ErrorBody {
            error: ErrorDetail {
                root_cause: [Cause {
                    kind,
                    reason,
                    header: header(),
                }],
                kind,
                reason,
                header: header(),
            },
            status,
        }
    }
}

async fn handle(State(ctx): State<Ctx>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let raw = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let route = Route::of(&path);
    let is_bulk = matches!(route, Route::Bulk(_)) && route.allowed().contains(&parts.method);
    let vendor_accept =
        header_str(&parts.headers, header::ACCEPT).is_some_and(|a| a.contains("vnd.elasticsearch"));

    let plan = {
        let mut st = ctx.shared.lock();
        st.counters.requests += 1;
        st.counters.bytes_received += raw.len() as u64;
        let mut plan = Plan::default();
        if is_bulk {
            st.counters.bulk_requests += 1;
            let f = &mut st.faults;
            plan.delay = f.delay;
            if f.hang > 0 {
                f.hang -= 1;
                plan.hang = true;
            } else if f.fail > 0 {
                f.fail -= 1;
                plan.fail = Some(f.fail_status);
            } else if f.throttle > 0 {
                f.throttle -= 1;
                plan.throttle = Some(f.retry_after);
            } else if f.drop_responses > 0 {
                f.drop_responses -= 1;
                plan.drop_response = true;
            } else if f.fail_after_storing > 0 {
                f.fail_after_storing -= 1;
                plan.fail_after_storing = Some(f.fail_after_storing_status);
            }
        }
        plan
    };
    let mut stop = ctx.stop.clone();
    if !plan.delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(plan.delay) => {}
            () = stop.stopped() => {}
        }
    }

    let decoded = decode_body(&parts.headers, &raw);
    let body = match &decoded {
        Ok(b) => b.clone(),
        Err(_) => raw.clone(),
    };
    let mut request = EsRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        status: 0,
    };

    if plan.hang {
        log_unanswered(&ctx.shared, request);
        stop.stopped().await;
        return finish(Reply::empty(503), vendor_accept);
    }

    let reply = respond(
        &ctx.shared,
        &parts.method,
        &parts.headers,
        &path,
        route,
        &raw,
        decoded,
        plan.fail,
        plan.throttle,
        started,
    );
    if plan.drop_response {
        log_unanswered(&ctx.shared, request);
        stop.stopped().await;
        return finish(Reply::empty(503), vendor_accept);
    }
    let reply = match plan.fail_after_storing {
        Some(status) if (200..300).contains(&reply.status) => {
            ctx.shared.lock().counters.failed_after_storing += 1;
            let reason =
                format!("injected failure {status} after indexing (logship-testkit fault)");
            Reply::json(
                status,
                &ErrorBody::new("status_exception", &reason, None, status),
            )
        }
        _ => reply,
    };
    {
        let mut st = ctx.shared.lock();
        *st.counters
            .responses_by_status
            .entry(reply.status)
            .or_insert(0) += 1;
        request.status = reply.status;
        push_request(&mut st, request);
    }
    finish(reply, vendor_accept)
}

fn log_unanswered(shared: &Shared, request: EsRequest) {
    let mut st = shared.lock();
    st.counters.unanswered += 1;
    push_request(&mut st, request);
}

fn push_request(st: &mut St, request: EsRequest) {
    if st.requests.len() >= REQUEST_LOG_LIMIT {
        st.requests.pop_front();
    }
    st.requests.push_back(request);
}

fn finish(reply: Reply, vendor_accept: bool) -> Response {
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if vendor_accept {
            "application/vnd.elasticsearch+json;compatible-with=8"
        } else {
            "application/json"
        }),
    );
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.append(name, v);
        }
    }
    resp
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Decompresses per `Content-Encoding`; `Err` carries the reason.
fn decode_body(headers: &HeaderMap, raw: &Bytes) -> Result<Bytes, String> {
    let encoding =
        header_str(headers, header::CONTENT_ENCODING).map(|e| e.trim().to_ascii_lowercase());
    let mut out = Vec::new();
    match encoding.as_deref() {
        None | Some("") | Some("identity") => return Ok(raw.clone()),
        Some("gzip") | Some("x-gzip") => flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("failed to decompress gzip request body: {e}"))?,
        Some("deflate") => flate2::read::ZlibDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("failed to decompress deflate request body: {e}"))?,
        Some(other) => return Err(format!("unsupported Content-Encoding [{other}]")),
    };
    Ok(Bytes::from(out))
}

/// Checks `Content-Type` as ES 8 does: `None` = accepted.
fn check_content_type(headers: &HeaderMap) -> Option<Reply> {
    let ct = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    let mut params = ct.split(';');
    let base = params.next().unwrap_or("").trim().to_ascii_lowercase();
    match base.as_str() {
        "application/x-ndjson" | "application/json" => None,
        "application/vnd.elasticsearch+x-ndjson" | "application/vnd.elasticsearch+json" => {
            let version = params
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("compatible-with"))
                .map(|(_, v)| v.trim().to_string());
            match version.as_deref() {
                Some("7") | Some("8") => None,
                _ => Some(Reply::error(&RequestError::bad_request(
                    "media_type_header_exception",
                    format!(
                        "Invalid media-type value on headers [Content-Type]: [{ct}]; compatible-with must be 7 or 8"
                    ),
                ))),
            }
        }
        _ => Some(Reply::short_error(
            406,
            format!("Content-Type header [{ct}] is not supported"),
        )),
    }
}

/// Checks the `Authorization` header against the configured auth; `Err` = the 401 reason.
fn check_auth(auth: &EsAuth, headers: &HeaderMap, path: &str) -> Result<(), String> {
    let missing = || format!("missing authentication credentials for REST request [{path}]");
    if *auth == EsAuth::None {
        return Ok(());
    }
    let Some(value) = header_str(headers, header::AUTHORIZATION) else {
        return Err(missing());
    };
    let (scheme, cred) = value.trim().split_once(' ').unwrap_or((value, ""));
    let cred = cred.trim();
    let decode = |c: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    match auth {
        EsAuth::None => Ok(()),
        EsAuth::Basic { username, password } => {
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(missing());
            }
            match decode(cred).as_deref().and_then(|s| s.split_once(':')) {
                Some((u, p)) if u == username && p == password => Ok(()),
                Some((u, _)) => Err(format!(
                    "unable to authenticate user [{u}] for REST request [{path}]"
                )),
                None => Err(format!(
                    "unable to authenticate user [] for REST request [{path}]"
                )),
            }
        }
        EsAuth::ApiKey { id, key } => {
            if !scheme.eq_ignore_ascii_case("apikey") {
                return Err(missing());
            }
            if decode(cred).is_some_and(|s| s == format!("{id}:{key}")) {
                Ok(())
            } else {
                Err(format!(
                    "unable to authenticate with provided credentials and anonymous access is not allowed for this request [{path}]"
                ))
            }
        }
        EsAuth::Bearer { token } => {
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(missing());
            }
            if cred == token {
                Ok(())
            } else {
                Err(format!(
                    "unable to authenticate with provided credentials for REST request [{path}]"
                ))
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn respond(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    route: Route,
    raw: &Bytes,
    decoded: Result<Bytes, String>,
    fail: Option<u16>,
    throttle: Option<Duration>,
    started: Instant,
) -> Reply {
    let mut st = shared.lock();
    let compressed = header_str(headers, header::CONTENT_ENCODING)
        .is_some_and(|e| !matches!(e.trim(), "" | "identity"));
    if compressed {
        st.counters.compressed_requests += 1;
    }
    if let Ok(body) = &decoded {
        st.counters.bytes_decompressed += body.len() as u64;
    }
    if let Some(limit) = st.faults.max_body_bytes {
        let size = decoded
            .as_ref()
            .map_or(raw.len(), |b| b.len().max(raw.len()));
        if size > limit {
            st.counters.too_large += 1;
            return Reply::empty(413);
        }
    }
    if let Err(reason) = check_auth(&st.auth, headers, path) {
        st.counters.auth_failures += 1;
        let mut reply = Reply::json(
            401,
            &ErrorBody::new("security_exception", &reason, Some(()), 401),
        );
        for value in WWW_AUTHENTICATE {
            reply
                .headers
                .push((header::WWW_AUTHENTICATE, (*value).to_string()));
        }
        return reply;
    }
    if let Some(status) = fail {
        st.counters.injected_failures += 1;
        let reason = format!("injected failure {status} (logship-testkit fault)");
        return Reply::json(
            status,
            &ErrorBody::new("status_exception", &reason, None, status),
        );
    }
    if let Some(retry_after) = throttle {
        st.counters.injected_throttles += 1;
        let reason = "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0] (logship-testkit fault)";
        let mut reply = Reply::json(
            429,
            &ErrorBody::new("es_rejected_execution_exception", reason, None, 429),
        );
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        reply.headers.push((header::RETRY_AFTER, secs.to_string()));
        return reply;
    }
    if !route.allowed().contains(method) {
        if matches!(route, Route::Unknown) {
            return Reply::short_error(
                400,
                format!("no handler found for uri [{path}] and method [{method}]"),
            );
        }
        let allowed: Vec<&str> = route.allowed().iter().map(Method::as_str).collect();
        return Reply::short_error(
            405,
            format!(
                "Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{}]",
                allowed.join(", ")
            ),
        );
    }
    let body = match decoded {
        Ok(b) => b,
        Err(reason) => {
            return Reply::error(&RequestError::bad_request(
                "illegal_argument_exception",
                reason,
            ));
        }
    };
    if !body.is_empty()
        && let Some(reply) = check_content_type(headers)
    {
        if reply.status == 406 {
            st.counters.unsupported_media_type += 1;
        }
        return reply;
    }
    match route {
        Route::Root => {
            if *method == Method::HEAD {
                return Reply::empty(200);
            }
            Reply::json(
                200,
                &serde_json::json!({
                    "name": "logship-testkit",
                    "cluster_name": "logship-testkit",
                    "cluster_uuid": "logship-testkit-cluster-uuid",
                    "version": {
                        "number": ES_VERSION,
                        "build_flavor": "default",
                        "build_type": "tar",
                        "build_hash": "0000000000000000000000000000000000000000",
                        "build_date": "2024-08-05T10:05:34.233336849Z",
                        "build_snapshot": false,
                        "lucene_version": "9.11.1",
                        "minimum_wire_compatibility_version": "7.17.0",
                        "minimum_index_compatibility_version": "7.0.0"
                    },
                    "tagline": "You Know, for Search"
                }),
            )
        }
        Route::Bulk(default_index) => bulk(&mut st, &body, default_index.as_deref(), started),
        Route::Templates => {
            let all: Vec<Value> = st
                .store
                .templates
                .iter()
                .map(|(n, t)| serde_json::json!({"name": n, "index_template": t.body}))
                .collect();
            if *method == Method::HEAD {
                return Reply::empty(200);
            }
            Reply::json(200, &serde_json::json!({"index_templates": all}))
        }
        Route::Template(name) => template(&mut st, method, &name, &body),
        Route::Unknown => Reply::short_error(
            400,
            format!("no handler found for uri [{path}] and method [{method}]"),
        ),
    }
}

fn template(st: &mut St, method: &Method, name: &str, body: &[u8]) -> Reply {
    let not_found = || {
        let reason = format!("index template matching [{name}] not found");
        Reply::json(
            404,
            &ErrorBody::new("resource_not_found_exception", &reason, None, 404),
        )
    };
    match *method {
        Method::PUT | Method::POST => {
            let value: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => {
                    return Reply::error(&RequestError::bad_request(
                        "x_content_parse_exception",
                        format!("[{}:{}] {e}", e.line(), e.column()),
                    ));
                }
            };
            match Template::from_body(value) {
                Ok(t) => {
                    st.store.templates.insert(name.to_string(), t);
                    Reply::json(200, &serde_json::json!({"acknowledged": true}))
                }
                Err(e) => Reply::error(&e),
            }
        }
        Method::DELETE => match st.store.templates.remove(name) {
            Some(_) => Reply::json(200, &serde_json::json!({"acknowledged": true})),
            None => not_found(),
        },
        Method::HEAD => match st.store.templates.get(name) {
            Some(_) => Reply::empty(200),
            None => Reply::empty(404),
        },
        _ => match st.store.templates.get(name) {
            Some(t) => Reply::json(
                200,
                &serde_json::json!({"index_templates": [{"name": name, "index_template": t.body}]}),
            ),
            None => not_found(),
        },
    }
}

fn bulk(st: &mut St, body: &[u8], default_index: Option<&str>, started: Instant) -> Reply {
    let items = match bulk::parse(body, default_index) {
        Ok(items) => items,
        Err(e) => return Reply::error(&e),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let rejection = st
            .faults
            .item_rejections
            .iter_mut()
            .find(|r| r.remaining > 0 && r.index.as_deref().is_none_or(|i| i == item.index));
        let conflict = item.op.name() == "create" && st.faults.conflicts > 0;
        let (body, outcome) = if conflict {
            st.faults.conflicts -= 1;
            st.counters.injected_conflicts += 1;
            let id = item.id.clone().unwrap_or_default();
            let body = ItemBody::failed(
                &item.index,
                item.id.clone(),
                409,
                ItemError {
                    kind: "version_conflict_engine_exception",
                    reason: format!(
                        "[{id}]: version conflict, document already exists (current version [1]) (logship-testkit fault)"
                    ),
                    index_uuid: None,
                    shard: None,
                    index: None,
                },
            );
            (body, Outcome::Failed)
        } else if let Some(r) = rejection {
            r.remaining -= 1;
            st.counters.injected_item_rejections += 1;
            let body = ItemBody::failed(
                &item.index,
                item.id.clone(),
                429,
                ItemError {
                    kind: "es_rejected_execution_exception",
                    reason: "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=0, max_coordinating_and_primary_bytes=0] (logship-testkit fault)".into(),
                    index_uuid: None,
                    shard: None,
                    index: None,
                },
            );
            (body, Outcome::Failed)
        } else {
            st.store.apply(item)
        };
        if outcome == Outcome::Duplicate {
            st.counters.duplicates_refused += 1;
        }
        *st.counters
            .bulk_items
            .entry((item.op.name().to_string(), body.status))
            .or_insert(0) += 1;
        out.push(ResponseItem { op: item.op, body });
    }
    st.faults.item_rejections.retain(|r| r.remaining > 0);
    let errors = out.iter().any(|i| i.body.is_failure());
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Reply::json(
        200,
        &BulkResponse {
            took,
            errors,
            items: out,
        },
    )
}
