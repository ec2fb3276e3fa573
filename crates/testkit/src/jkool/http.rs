//! The HTTP side of [`JkoolReceiver`](super::JkoolReceiver): per-connection handshake
//! sessions, auth, faults, validation and storage.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::serve::IncomingStream;
use serde_json::Value;
use tokio::net::TcpListener;

use super::validate::{Kind, validate};
use super::{JkoolAuthMethod, JkoolRequest, REQUEST_LOG_LIMIT, Shared, State as St};
use crate::server::StopSignal;

/// Identifies one accepted TCP connection (ids are unique for the process, so a reused peer
/// port never inherits an earlier connection's handshake).
#[derive(Debug, Clone, Copy)]
struct Conn {
    id: u64,
    peer: SocketAddr,
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

impl Connected<IncomingStream<'_, TcpListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Conn {
            id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            peer: *stream.remote_addr(),
        }
    }
}

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    stop: StopSignal,
    base: Arc<str>,
}

pub(super) async fn serve(
    listener: TcpListener,
    stop: StopSignal,
    shared: Arc<Shared>,
    base: String,
) {
    let ctx = Ctx {
        shared,
        stop: stop.clone(),
        base: base.into(),
    };
    let app = Router::new()
        .fallback(handle)
        .with_state(ctx)
        .into_make_service_with_connect_info::<Conn>();
    let mut stop = stop;
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await;
    if let Err(e) = served {
        panic!("jkool receiver: serve failed: {e}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Doc(Kind),
    Other,
}

impl Route {
    fn of(base: &str, path: &str) -> Route {
        let Some(rest) = path.strip_prefix(base) else {
            return Route::Other;
        };
        match rest.trim_end_matches('/') {
            "/event" => Route::Doc(Kind::Event),
            "/activity" => Route::Doc(Kind::Activity),
            "/snapshot" => Route::Doc(Kind::Snapshot),
            _ => Route::Other,
        }
    }
}

fn endpoint_name(route: Route, handshake: bool) -> &'static str {
    if handshake {
        return "handshake";
    }
    match route {
        Route::Doc(Kind::Event) => "event",
        Route::Doc(Kind::Activity) => "activity",
        Route::Doc(Kind::Snapshot) => "snapshot",
        Route::Other => "other",
    }
}

struct Reply {
    status: u16,
    retry_after: Option<u64>,
    text: String,
}

impl Reply {
    fn new(status: u16, text: impl Into<String>) -> Reply {
        Reply {
            status,
            retry_after: None,
            text: text.into(),
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

fn media_type(headers: &HeaderMap) -> String {
    header_str(headers, "content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Parses `<access-request><token>T</token></access-request>` (surrounding whitespace allowed).
pub(crate) fn access_request_token(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let inner = text
        .strip_prefix("<access-request>")?
        .strip_suffix("</access-request>")?
        .trim();
    let token = inner.strip_prefix("<token>")?.strip_suffix("</token>")?;
    Some(token.trim().to_string())
}

async fn handle(
    State(ctx): State<Ctx>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let raw = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let route = Route::of(&ctx.base, &path);
    let handshake = parts.method == Method::POST && media_type(&parts.headers) == "text/plain";
    let is_data_post = !handshake && parts.method == Method::POST && matches!(route, Route::Doc(_));

    let (delay, hang, fail, throttle) = {
        let mut st = ctx.shared.lock();
        st.counters.requests += 1;
        st.counters.bytes_received += raw.len() as u64;
        if st.seen_connections.insert(conn.id) {
            st.counters.connections += 1;
        }
        let f = &mut st.faults;
        let (mut hang, mut fail, mut throttle) = (false, None, None);
        if is_data_post {
            if f.hang > 0 {
                f.hang -= 1;
                hang = true;
            } else if f.fail > 0 {
                f.fail -= 1;
                fail = Some(f.fail_status);
            } else if f.throttle > 0 {
                f.throttle -= 1;
                throttle = Some(f.retry_after);
            }
        }
        (
            if is_data_post {
                f.delay
            } else {
                Duration::ZERO
            },
            hang,
            fail,
            throttle,
        )
    };
    let mut stop = ctx.stop.clone();
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.stopped() => {}
        }
    }
    let decoded = decode_body(&parts.headers, &raw);
    let mut request = JkoolRequest {
        connection: conn.id,
        peer: conn.peer,
        method: parts.method.to_string(),
        path: path.clone(),
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
        body: decoded
            .as_ref()
            .map_or_else(|_| raw.to_vec(), |b| b.to_vec()),
        status: 0,
    };
    if hang {
        {
            let mut st = ctx.shared.lock();
            st.counters.unanswered += 1;
            push_request(&mut st, request);
        }
        stop.stopped().await;
        return finish(Reply::new(503, "stopped"));
    }

    let mut st = ctx.shared.lock();
    let reply = if handshake {
        do_handshake(&mut st, conn, &decoded)
    } else if let Route::Doc(kind) = route {
        if parts.method != Method::POST {
            Reply::new(
                405,
                format!("method {} not allowed on {path}; use POST", parts.method),
            )
        } else if let Some(status) = fail {
            st.counters.injected_failures += 1;
            Reply::new(status, "injected failure (logship-testkit fault)")
        } else if let Some(retry_after) = throttle {
            st.counters.injected_throttles += 1;
            let mut r = Reply::new(429, "too many requests (logship-testkit fault)");
            r.retry_after = Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0));
            r
        } else {
            data_post(&mut st, conn, kind, &parts.headers, decoded)
        }
    } else {
        Reply::new(404, format!("no endpoint at {path}"))
    };
    if reply.status == 400 {
        st.counters.invalid_requests += 1;
        st.rejections.push(reply.text.clone());
    }
    let key = (endpoint_name(route, handshake).to_string(), reply.status);
    *st.counters.responses.entry(key).or_insert(0) += 1;
    request.status = reply.status;
    push_request(&mut st, request);
    drop(st);
    finish(reply)
}

fn push_request(st: &mut St, request: JkoolRequest) {
    if st.requests.len() >= REQUEST_LOG_LIMIT {
        st.requests.pop_front();
    }
    st.requests.push_back(request);
}

fn finish(reply: Reply) -> Response {
    let mut resp = Response::new(Body::from(reply.text));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn decode_body(headers: &HeaderMap, raw: &Bytes) -> Result<Bytes, String> {
    let mut out = Vec::new();
    match header_str(headers, "content-encoding")
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => return Ok(raw.clone()),
        Some("gzip") | Some("x-gzip") => flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot decompress gzip body: {e}"))?,
        Some(other) => return Err(format!("unsupported Content-Encoding [{other}]")),
    };
    Ok(Bytes::from(out))
}

fn auth_failure(st: &mut St, text: impl Into<String>) -> Reply {
    st.counters.auth_failures += 1;
    Reply::new(st.failure_status, text)
}

fn do_handshake(st: &mut St, conn: Conn, body: &Result<Bytes, String>) -> Reply {
    let token = match body {
        Ok(b) => access_request_token(b),
        Err(e) => return Reply::new(400, e.clone()),
    };
    let Some(token) = token else {
        return Reply::new(
            400,
            "text/plain body is not <access-request><token>TOKEN</token></access-request>",
        );
    };
    if !st.methods.contains(&JkoolAuthMethod::Handshake) {
        st.sessions.remove(&conn.id);
        return auth_failure(st, "access-request handshakes are not accepted here");
    }
    let valid = st.tokens.as_ref().is_none_or(|t| t.contains(&token));
    if valid {
        st.sessions.insert(conn.id, token);
        st.counters.handshakes += 1;
        Reply::new(200, "")
    } else {
        st.sessions.remove(&conn.id);
        auth_failure(st, "access denied: invalid token")
    }
}

/// Which method authorises this data post; `Err` = the failure text.
fn authorise(st: &St, conn: Conn, headers: &HeaderMap) -> Result<&'static str, &'static str> {
    let Some(tokens) = &st.tokens else {
        return Ok("none");
    };
    for (method, header) in [
        (JkoolAuthMethod::TokenHeader, "token"),
        (JkoolAuthMethod::ApiKeyHeader, "x-api-key"),
    ] {
        if st.methods.contains(&method)
            && let Some(value) = header_str(headers, header)
        {
            return if tokens.contains(&value) {
                Ok(method.name())
            } else {
                Err("access denied: invalid token")
            };
        }
    }
    if st.methods.contains(&JkoolAuthMethod::Handshake)
        && let Some(token) = st.sessions.get(&conn.id)
    {
        return if tokens.contains(token) {
            Ok(JkoolAuthMethod::Handshake.name())
        } else {
            Err("access denied: the token of this connection's access request was revoked")
        };
    }
    Err("access denied: no token")
}

fn data_post(
    st: &mut St,
    conn: Conn,
    kind: Kind,
    headers: &HeaderMap,
    body: Result<Bytes, String>,
) -> Reply {
    let by = match authorise(st, conn, headers) {
        Ok(by) => by,
        Err(text) => return auth_failure(st, text),
    };
    *st.counters.authorized_by.entry(by.to_string()).or_insert(0) += 1;
    let body = match body {
        Ok(b) => b,
        Err(e) => return Reply::new(400, e),
    };
    let ping = header_str(headers, "pragma").is_some_and(|p| p.eq_ignore_ascii_case("ping"));
    if ping && body.iter().all(u8::is_ascii_whitespace) {
        st.counters.pings += 1;
        return Reply::new(200, "");
    }
    let media = media_type(headers);
    if media != "application/json" {
        return Reply::new(
            400,
            format!("Content-Type must be application/json, found [{media}]"),
        );
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return Reply::new(400, format!("invalid JSON: {e}")),
    };
    let docs = match value {
        Value::Array(_) if !st.accept_arrays => {
            st.counters.arrays_refused += 1;
            return Reply::new(
                400,
                "a JSON array is not accepted: post one JSON object per request \
                 (as jkool-client-java-api JKStream.post does); \
                 JkoolReceiverBuilder::with_accept_arrays(true) accepts arrays",
            );
        }
        Value::Array(items) if items.is_empty() => return Reply::new(400, "empty JSON array"),
        Value::Array(items) => items,
        other => vec![other],
    };
    let batched = docs.len() > 1;
    let mut reasons = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if let Err(e) = validate(kind, doc) {
            reasons.push(if batched { format!("[{i}]: {e}") } else { e });
        }
    }
    if !reasons.is_empty() {
        st.counters.invalid_documents += reasons.len() as u64;
        return Reply::new(
            400,
            format!(
                "invalid {}: {}",
                endpoint_name(Route::Doc(kind), false),
                reasons.join("; ")
            ),
        );
    }
    st.counters.documents += docs.len() as u64;
    let keep = st.keep_documents;
    let (target, status) = match kind {
        Kind::Event => (&mut st.events, 202),
        Kind::Activity => (&mut st.activities, 200),
        Kind::Snapshot => (&mut st.snapshots, 202),
    };
    if keep {
        target.extend(docs);
    }
    Reply::new(status, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_request_body() {
        assert_eq!(
            access_request_token(b"<access-request><token>abc</token></access-request>").as_deref(),
            Some("abc")
        );
        assert_eq!(
            access_request_token(b" <access-request> <token>abc</token> </access-request>\n")
                .as_deref(),
            Some("abc")
        );
        assert_eq!(access_request_token(b"<token>abc</token>"), None);
    }

    #[test]
    fn routes() {
        assert_eq!(Route::of("/JESL", "/JESL/event"), Route::Doc(Kind::Event));
        assert_eq!(
            Route::of("/JESL", "/JESL/activity/"),
            Route::Doc(Kind::Activity)
        );
        assert_eq!(Route::of("", "/snapshot"), Route::Doc(Kind::Snapshot));
        assert_eq!(Route::of("/JESL", "/event"), Route::Other);
    }
}
