//! The HTTP side: routes, auth, streaming ingestion, control commands, the emulated Azure
//! Storage blob container and queue, and the response shapes (v1 datasets, OneApi errors,
//! AAD errors, Azure Storage XML).

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::csl::{self, Command};
use super::formats::{self, DataFormat, Mapping};
use super::state::{Config, Inner, Shared, Table, TokenInfo};
use super::{
    MgmtCommand, QueuedIngestion, READY_QUEUE, SizeBasis, StreamingFault, StreamingRequest,
    TEMP_CONTAINER,
};
use crate::server::StopSignal;

type Ctx = State<Arc<Shared>>;

/// Runs the receiver's router until `stop`.
pub(crate) async fn serve(listener: TcpListener, mut stop: StopSignal, shared: Arc<Shared>) {
    let body_limit = (64 * 1024 * 1024).max(shared.config.max_streaming_bytes.saturating_mul(4));
    let app = Router::new()
        .route("/v1/rest/auth/metadata", get(metadata))
        .route("/v1/rest/ingest/{db}/{table}", post(streaming))
        .route("/v1/rest/mgmt", post(mgmt))
        .route("/v1/rest/query", post(query))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/blob/{container}/{*name}", put(blob_put).get(blob_get))
        .route("/queue/{queue}/messages", post(queue_put))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await;
}

// ---- response shapes ----------------------------------------------------------------------

/// A failed command or request, rendered as a OneApi error.
#[derive(Debug, Clone)]
pub(crate) struct CmdError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) type_name: &'static str,
    pub(crate) message: String,
    pub(crate) permanent: bool,
}

impl CmdError {
    fn bad_request(
        code: &'static str,
        type_name: &'static str,
        message: impl Into<String>,
    ) -> CmdError {
        CmdError {
            status: StatusCode::BAD_REQUEST,
            code,
            type_name,
            message: message.into(),
            permanent: true,
        }
    }

    fn not_found_entity(message: String) -> CmdError {
        CmdError::bad_request(
            "BadRequest_EntityNotFound",
            "Kusto.Data.Exceptions.EntityNotFoundException",
            message,
        )
    }

    fn syntax(message: String) -> CmdError {
        CmdError::bad_request(
            "General_BadRequest",
            "Kusto.Data.Exceptions.SyntaxException",
            format!("Syntax error: {message}"),
        )
    }
}

fn oneapi(err: &CmdError, request_id: Option<&str>) -> Response {
    let activity = uuid::Uuid::new_v4().to_string();
    let summary = match err.status.as_u16() {
        400 => "Request is invalid and cannot be executed.",
        401 => "Unauthorized: the request lacks valid authentication credentials.",
        404 => "The requested resource was not found.",
        429 => "The request was denied due to throttling.",
        _ => "Service is temporarily unavailable; retry later.",
    };
    let body = json!({
        "error": {
            "code": err.code,
            "message": summary,
            "@type": err.type_name,
            "@message": err.message,
            "@context": {
                "timestamp": chrono::Utc::now().to_rfc3339(),
                "serviceAlias": "LOGSHIP-TESTKIT",
                "clientRequestId": request_id.unwrap_or(""),
                "activityId": activity,
                "activityType": "DN.FE.ExecuteControlCommand",
            },
            "@permanent": err.permanent,
        }
    });
    let mut resp = (err.status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&activity) {
        resp.headers_mut().insert("x-ms-activity-id", v);
    }
    resp
}

/// A v1 table: `columns` are `(name, canonical kusto type)`.
fn v1_table(columns: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Value {
    let cols: Vec<Value> = columns
        .iter()
        .map(|(n, t)| json!({"ColumnName": n, "DataType": csl::data_type(t), "ColumnType": t}))
        .collect();
    json!({"TableName": "Table_0", "Columns": cols, "Rows": rows})
}

fn v1_dataset(table: Value) -> Value {
    json!({ "Tables": [table] })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Percent-decodes `s` (`+` is a space in forms and queries).
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1..i + 3].iter().all(u8::is_ascii_hexdigit) =>
            {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=b&c=d` (query strings and form bodies) into decoded pairs.
pub(crate) fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

async fn not_found() -> Response {
    let err = CmdError {
        status: StatusCode::NOT_FOUND,
        code: "NotFound",
        type_name: "Kusto.Common.Svc.Exceptions.EndpointNotFoundException",
        message: "The requested endpoint does not exist.".into(),
        permanent: true,
    };
    oneapi(&err, None)
}

// ---- AAD ----------------------------------------------------------------------------------

async fn metadata(State(shared): Ctx) -> Response {
    let c = &shared.config;
    if !c.auth_metadata {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    let body = json!({
        "AzureAD": {
            "LoginEndpoint": c.url,
            "LoginMfaRequired": c.login_mfa_required,
            "KustoClientAppId": "db662dc1-0cfe-4e1c-a843-19a68e65be58",
            "KustoClientRedirectUri": "https://microsoft/kustoclient",
            "KustoServiceResourceId": c.service_resource_id,
            "FirstPartyAuthorityUrl": format!("{}/f8cdef31-a31e-4b4a-93e4-5f571e91255a", c.url),
        },
        "dSTS": {
            "CloudEndpoint": "https://realm.invalid",
            "DstsRealm": "realm://dsts.invalid",
            "DstsInstance": "dsts.invalid",
            "KustoDnsHostName": "127.0.0.1",
            "ServiceName": "kusto",
        }
    });
    axum::Json(body).into_response()
}

fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Timestamp: {}", chrono::Utc::now().to_rfc3339()),
        "error_codes": [code],
        "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
        "trace_id": trace,
        "correlation_id": uuid::Uuid::new_v4().to_string(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, axum::Json(body)).into_response()
}

async fn token(State(shared): Ctx, Path(tenant): Path<String>, body: Bytes) -> Response {
    let c = &shared.config;
    let form = parse_pairs(&String::from_utf8_lossy(&body));
    let refuse = |status, error, code, desc: &str| {
        shared.lock().stats.token_failures += 1;
        aad_error(status, error, code, desc)
    };
    if let Some(t) = &c.tenant
        && !t.eq_ignore_ascii_case(&tenant)
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if param(&form, "grant_type") != Some("client_credentials") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type; only client_credentials is served here.",
        );
    }
    let client_id = param(&form, "client_id").unwrap_or("");
    if client_id != c.client_id {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    if param(&form, "client_secret") != Some(c.client_secret.as_str()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let scope = param(&form, "scope").unwrap_or("");
    let mfa = c.service_resource_id.replace(".kusto.", ".kustomfa.");
    let scope_ok = scope.split(' ').any(|s| {
        s.strip_suffix("/.default").is_some_and(|r| {
            let r = r.trim_end_matches('/');
            r == c.service_resource_id || r == mfa || r == c.url
        })
    });
    if !scope_ok {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    let access_token = super::new_token();
    let lifetime = c.token_lifetime;
    {
        let mut inner = shared.lock();
        inner.tokens.insert(
            access_token.clone(),
            TokenInfo {
                expires: Some(Instant::now() + lifetime),
                revoked: false,
            },
        );
        inner.stats.tokens_issued += 1;
    }
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access_token,
    }))
    .into_response()
}

/// Checks the bearer token (and scripted 401s); on failure counts it and returns the 401.
fn check_auth(
    config: &Config,
    inner: &mut Inner,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let reason = if inner.unauthorized_next > 0 {
        inner.unauthorized_next -= 1;
        Some("scripted 401 (unauthorized_next)")
    } else if !config.require_auth {
        None
    } else {
        match header_str(headers, "authorization").map(|v| v.split_once(' ')) {
            Some(Some((scheme, tok))) if scheme.eq_ignore_ascii_case("bearer") => {
                if inner.token_valid(tok.trim()) {
                    None
                } else if inner.tokens.contains_key(tok.trim()) {
                    Some("the access token has expired")
                } else {
                    Some("the access token was not issued by this service")
                }
            }
            _ => Some("the request has no 'Authorization: Bearer' header"),
        }
    };
    let Some(reason) = reason else { return Ok(()) };
    inner.stats.auth_failures += 1;
    let err = CmdError {
        status: StatusCode::UNAUTHORIZED,
        code: "Unauthorized",
        type_name: "Kusto.Common.Svc.Exceptions.UnauthorizedOperationException",
        message: format!("Unauthorized: {reason}."),
        permanent: true,
    };
    let mut resp = oneapi(&err, header_str(headers, "x-ms-client-request-id"));
    let challenge = format!(
        "Bearer authorization_uri=\"{}/common\", error=\"invalid_token\", error_description=\"{reason}\"",
        config.url
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Err(Box::new(resp))
}

// ---- streaming ingestion ------------------------------------------------------------------

const CLIENT_HEADERS: [&str; 5] = [
    "x-ms-client-request-id",
    "x-ms-app",
    "x-ms-user",
    "x-ms-client-version",
    "x-ms-version",
];

/// Decodes `body` per `Content-Encoding`, reading at most `cap` bytes of output.
fn decode_body(encoding: Option<&str>, body: &[u8], cap: usize) -> Result<Vec<u8>, CmdError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(body.to_vec()),
        Some(e) if e.is_empty() || e == "identity" => Ok(body.to_vec()),
        Some(e) if e == "gzip" => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(body)
                .take(cap as u64)
                .read_to_end(&mut out)
                .map_err(|err| {
                    CmdError::bad_request(
                        "BadRequest_InvalidArchive",
                        "Kusto.DataNode.Exceptions.InvalidArchiveException",
                        format!("Content-Encoding is gzip but the body is not valid gzip: {err}"),
                    )
                })?;
            Ok(out)
        }
        Some(other) => Err(CmdError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "BadRequest_UnsupportedContentEncoding",
            type_name: "Kusto.Common.Svc.Exceptions.BadRequestException",
            message: format!("Content-Encoding '{other}' is not supported; use gzip or none."),
            permanent: true,
        }),
    }
}

fn mapping_for<'a>(table: &'a Table, kind: &str, name: &str) -> Result<&'a Mapping, CmdError> {
    table
        .mappings
        .get(&(kind.to_string(), name.to_string()))
        .ok_or_else(|| {
            CmdError::bad_request(
                "BadRequest_InvalidMappingReference",
                "Kusto.DataNode.Exceptions.IngestionMappingNotFoundException",
                format!(
                    "Mapping reference '{name}' of kind '{kind}' was not found for this table."
                ),
            )
        })
}

/// How to read one ingestion's data.
struct IngestSpec<'a> {
    format: DataFormat,
    mapping_name: Option<&'a str>,
    inline_mapping: Option<Mapping>,
    skip_first: bool,
}

/// Parses `data` and appends its rows to `db.table`; returns the number of rows.
fn ingest_into(
    config: &Config,
    inner: &mut Inner,
    db: &str,
    table_name: &str,
    spec: IngestSpec<'_>,
    data: &[u8],
) -> Result<usize, CmdError> {
    let IngestSpec {
        format,
        mapping_name,
        inline_mapping,
        skip_first,
    } = spec;
    let table = inner
        .table_mut(db, table_name, config.auto_create)
        .map_err(CmdError::not_found_entity)?;
    let mapping = match (mapping_name, inline_mapping) {
        (Some(name), _) => Some(mapping_for(table, format.mapping_kind(), name)?.clone()),
        (None, Some(m)) => Some(m),
        (None, None) => None,
    };
    let bad = |m: String| {
        CmdError::bad_request(
            "BadRequest_UnexpectedCharacterInInputStream",
            "Kusto.DataNode.Exceptions.StreamingIngestionBadRequestException",
            m,
        )
    };
    let records = formats::records(format, data).map_err(bad)?;
    let mut rows = Vec::with_capacity(records.len());
    for record in records.into_iter().skip(usize::from(skip_first)) {
        rows.push(formats::to_row(record, mapping.as_ref(), &table.columns).map_err(bad)?);
    }
    let n = rows.len();
    if config.keep_rows {
        table.rows.extend(rows);
    }
    Ok(n)
}

async fn streaming(
    State(shared): Ctx,
    Path((db, table)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = &shared.config;
    let pairs = parse_pairs(query.as_deref().unwrap_or(""));
    let request_id = header_str(&headers, "x-ms-client-request-id").map(str::to_string);
    let mut record = StreamingRequest {
        database: db.clone(),
        table: table.clone(),
        stream_format: param(&pairs, "streamFormat").map(str::to_string),
        mapping_name: param(&pairs, "mappingName").map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        wire_bytes: body.len(),
        uncompressed_bytes: 0,
        status: 0,
    };
    let delay = shared.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut inner = shared.lock();
    inner.stats.streaming_requests += 1;
    inner.stats.bytes_wire += body.len() as u64;
    let result = streaming_inner(
        config,
        &mut inner,
        &db,
        &table,
        &pairs,
        &headers,
        &body,
        &mut record,
    );
    let resp = match result {
        Ok(rows) => {
            inner.stats.streaming_accepted += 1;
            inner.stats.streaming_rows += rows as u64;
            let t = v1_table(
                &[
                    ("ConsumedRecordsCount", "long"),
                    ("UpdatePolicyStatus", "string"),
                    ("UpdatePolicyFailureCode", "string"),
                    ("UpdatePolicyFailureReason", "string"),
                ],
                vec![vec![
                    json!(rows),
                    json!("Inactive"),
                    json!("Unknown"),
                    Value::Null,
                ]],
            );
            axum::Json(v1_dataset(t)).into_response()
        }
        Err(StreamingError::Response(r)) => *r,
        Err(StreamingError::Cmd(e)) => oneapi(&e, request_id.as_deref()),
    };
    record.status = resp.status().as_u16();
    inner.streaming_requests.push(record);
    resp
}

enum StreamingError {
    Response(Box<Response>),
    Cmd(CmdError),
}

impl From<CmdError> for StreamingError {
    fn from(e: CmdError) -> Self {
        StreamingError::Cmd(e)
    }
}

#[allow(clippy::too_many_arguments)]
fn streaming_inner(
    config: &Config,
    inner: &mut Inner,
    db: &str,
    table: &str,
    pairs: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    record: &mut StreamingRequest,
) -> Result<usize, StreamingError> {
    if !inner.streaming_enabled {
        return Err(CmdError {
            status: StatusCode::NOT_FOUND,
            code: "NotFound",
            type_name: "Kusto.Common.Svc.Exceptions.EndpointNotFoundException",
            message: "The ingestion endpoint does not exist: streaming ingestion is not enabled on this cluster.".into(),
            permanent: true,
        }
        .into());
    }
    check_auth(config, inner, headers).map_err(StreamingError::Response)?;
    if let Some(fault) = inner.faults.pop_front() {
        return Err(match fault {
            StreamingFault::Throttle { retry_after } => {
                inner.stats.throttled += 1;
                let err = CmdError {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "TooManyRequests",
                    type_name: "Kusto.DataNode.Exceptions.ThrottleException",
                    message: "The streaming ingestion request was throttled (scripted fault)."
                        .into(),
                    permanent: false,
                };
                let mut resp = oneapi(&err, header_str(headers, "x-ms-client-request-id"));
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                StreamingError::Response(Box::new(resp))
            }
            StreamingFault::Transient { status } => StreamingError::Cmd(CmdError {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                code: "ServiceUnavailable",
                type_name: "Kusto.Common.Svc.Exceptions.ServiceTemporarilyUnavailableException",
                message: "Transient failure (scripted fault); retry later.".into(),
                permanent: false,
            }),
            StreamingFault::Permanent => StreamingError::Cmd(CmdError::bad_request(
                "BadRequest_ScriptedPermanentFailure",
                "Kusto.Common.Svc.Exceptions.BadRequestException",
                "Permanent failure (scripted fault); do not retry.",
            )),
            StreamingFault::Unauthorized => {
                inner.unauthorized_next += 1;
                match check_auth(config, inner, headers) {
                    Err(r) => StreamingError::Response(r),
                    Ok(()) => StreamingError::Cmd(CmdError::bad_request("Unreachable", "", "")),
                }
            }
        });
    }
    if config.strict_client_headers {
        let missing: Vec<&str> = CLIENT_HEADERS
            .iter()
            .copied()
            .filter(|h| header_str(headers, h).is_none_or(|v| v.trim().is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(CmdError::bad_request(
                "BadRequest_MissingClientHeader",
                "LogshipTestkit.StrictClientHeaders",
                format!(
                    "Missing telemetry header(s) {} (the service only recommends them; this receiver requires them, see with_strict_client_headers).",
                    missing.join(", ")
                ),
            )
            .into());
        }
    }
    let format_name = param(pairs, "streamFormat").ok_or_else(|| {
        CmdError::bad_request(
            "BadRequest_MissingStreamFormat",
            "Kusto.Common.Svc.Exceptions.BadRequestException",
            "The 'streamFormat' query parameter is required.",
        )
    })?;
    let format = DataFormat::parse(format_name).map_err(|m| {
        CmdError::bad_request(
            "BadRequest_FormatNotSupported",
            "Kusto.Common.Svc.Exceptions.BadRequestException",
            m,
        )
    })?;
    if param(pairs, "sourceKind").is_some_and(|k| k.eq_ignore_ascii_case("uri")) {
        return Err(CmdError::bad_request(
            "BadRequest_FormatNotSupported",
            "Kusto.Common.Svc.Exceptions.BadRequestException",
            "sourceKind=uri (streaming from a blob) is not supported by this receiver.",
        )
        .into());
    }
    // Entity check before reading the body, as the service does.
    inner
        .table_mut(db, table, config.auto_create)
        .map_err(CmdError::not_found_entity)?;
    let limit = config.max_streaming_bytes;
    let too_big = |size: usize, what: &str| {
        CmdError::bad_request(
            "BadRequest_StreamingIngestionRequestSizeLimitExceeded",
            "Kusto.DataNode.Exceptions.StreamingIngestionRequestSizeLimitExceededException",
            format!(
                "The {what} request size {size} bytes exceeds the streaming ingestion limit of {limit} bytes; use queued ingestion."
            ),
        )
    };
    if config.size_basis == SizeBasis::Wire && body.len() > limit {
        return Err(too_big(body.len(), "compressed").into());
    }
    let cap = match config.size_basis {
        SizeBasis::Uncompressed => limit.saturating_add(1),
        SizeBasis::Wire => 1 << 30,
    };
    let data = decode_body(header_str(headers, "content-encoding"), body, cap)?;
    record.uncompressed_bytes = data.len();
    inner.stats.bytes_uncompressed += data.len() as u64;
    if config.size_basis == SizeBasis::Uncompressed && data.len() > limit {
        return Err(too_big(data.len(), "uncompressed").into());
    }
    let mapping_name = param(pairs, "mappingName");
    if mapping_name.is_none()
        && config.streaming_mapping_required
        && format.mapping_kind() == "json"
    {
        return Err(CmdError::bad_request(
            "BadRequest_MappingReferenceRequired",
            "Kusto.Common.Svc.Exceptions.BadRequestException",
            format!(
                "Streaming ingestion of format '{format_name}' requires the 'mappingName' query parameter (a pre-created ingestion mapping)."
            ),
        )
        .into());
    }
    let spec = IngestSpec {
        format,
        mapping_name,
        inline_mapping: None,
        skip_first: false,
    };
    Ok(ingest_into(config, inner, db, table, spec, &data)?)
}

// ---- control commands ---------------------------------------------------------------------

fn schema_string(columns: &[(String, String)]) -> String {
    columns
        .iter()
        .map(|(c, t)| format!("{c}:{t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn table_row(db: &str, name: &str, t: &Table) -> Vec<Value> {
    vec![
        json!(name),
        json!(schema_string(&t.columns)),
        json!(db),
        json!(""),
        json!(""),
    ]
}

const TABLE_COLUMNS: [(&str, &str); 5] = [
    ("TableName", "string"),
    ("Schema", "string"),
    ("DatabaseName", "string"),
    ("Folder", "string"),
    ("DocString", "string"),
];

const MAPPING_COLUMNS: [(&str, &str); 6] = [
    ("Name", "string"),
    ("Kind", "string"),
    ("Mapping", "string"),
    ("LastUpdatedOn", "datetime"),
    ("Database", "string"),
    ("Table", "string"),
];

fn sas_query(config: &Config, resource: &str) -> String {
    format!(
        "sv=2024-11-04&se=2099-12-31T23%3A59%3A59Z&sr={resource}&sp=rwdl&sig={}",
        config.sas_signature
    )
}

/// Executes one control command against `db`; returns the v1 dataset to answer.
///
/// # Errors
/// The OneApi error to answer (syntax, unknown entity, invalid mapping).
pub(crate) fn run_command(
    config: &Config,
    inner: &mut Inner,
    db: &str,
    csl_text: &str,
) -> Result<Value, CmdError> {
    let cmd = csl::parse(csl_text).map_err(CmdError::syntax)?;
    let db_exists = |inner: &mut Inner| -> Result<(), CmdError> {
        if !inner.databases.contains_key(db) {
            if !config.auto_create {
                return Err(CmdError::not_found_entity(format!(
                    "Entity ID '{db}' of kind 'Database' was not found."
                )));
            }
            inner.databases.insert(db.to_string(), Default::default());
        }
        Ok(())
    };
    let table = match cmd {
        Command::CreateTable {
            table,
            columns,
            merge,
        } => {
            db_exists(inner)?;
            let tables = inner.databases.entry(db.to_string()).or_default();
            let t = tables.entry(table.clone()).or_default();
            if t.columns.is_empty() || merge {
                for (c, ty) in columns {
                    match t.columns.iter().find(|(n, _)| *n == c) {
                        Some((_, existing)) if *existing != ty => {
                            return Err(CmdError::bad_request(
                                "BadRequest_BadColumnType",
                                "Kusto.Data.Exceptions.SemanticException",
                                format!(
                                    "Column '{c}' already exists with type '{existing}', not '{ty}'."
                                ),
                            ));
                        }
                        Some(_) => {}
                        None => t.columns.push((c, ty)),
                    }
                }
            }
            v1_table(&TABLE_COLUMNS, vec![table_row(db, &table, t)])
        }
        Command::CreateMapping {
            table,
            kind,
            name,
            mapping,
        } => {
            db_exists(inner)?;
            let m = formats::parse_mapping(&kind, &mapping).map_err(|e| {
                CmdError::bad_request(
                    "BadRequest_InvalidMapping",
                    "Kusto.Data.Exceptions.IngestionMappingException",
                    e,
                )
            })?;
            let t = inner
                .table_mut(db, &table, false)
                .map_err(CmdError::not_found_entity)?;
            let text = m.text.clone();
            t.mappings.insert((kind.clone(), name.clone()), m);
            v1_table(
                &MAPPING_COLUMNS,
                vec![vec![
                    json!(name),
                    json!(capitalize(&kind)),
                    json!(text),
                    json!(chrono::Utc::now().to_rfc3339()),
                    json!(db),
                    json!(table),
                ]],
            )
        }
        Command::ShowTables => {
            db_exists(inner)?;
            let rows = inner
                .databases
                .get(db)
                .map(|tables| {
                    tables
                        .iter()
                        .map(|(n, t)| table_row(db, n, t))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            v1_table(&TABLE_COLUMNS, rows)
        }
        Command::ShowMappings { table } => {
            db_exists(inner)?;
            let mut rows = Vec::new();
            if let Some(tables) = inner.databases.get(db) {
                for (tn, t) in tables {
                    if table.as_ref().is_some_and(|want| want != tn) {
                        continue;
                    }
                    for ((kind, name), m) in &t.mappings {
                        rows.push(vec![
                            json!(name),
                            json!(capitalize(kind)),
                            json!(m.text),
                            Value::Null,
                            json!(db),
                            json!(tn),
                        ]);
                    }
                }
            }
            v1_table(&MAPPING_COLUMNS, rows)
        }
        Command::ShowVersion => v1_table(
            &[
                ("BuildVersion", "string"),
                ("BuildTime", "datetime"),
                ("ServiceType", "string"),
                ("ProductVersion", "string"),
            ],
            vec![vec![
                json!("1.0.0.0"),
                json!("2024-01-01T00:00:00Z"),
                json!("DataManagement"),
                json!("logship-testkit"),
            ]],
        ),
        Command::GetIngestionResources => {
            let blob = format!(
                "{}/blob/{TEMP_CONTAINER}?{}",
                config.url,
                sas_query(config, "c")
            );
            let q = |name: &str| format!("{}/queue/{name}?{}", config.url, sas_query(config, "q"));
            let rows = vec![
                vec![
                    json!("SecuredReadyForAggregationQueue"),
                    json!(q(READY_QUEUE)),
                ],
                vec![json!("FailedIngestionsQueue"), json!(q("failedingestions"))],
                vec![
                    json!("SuccessfulIngestionsQueue"),
                    json!(q("successfulingestions")),
                ],
                vec![json!("TempStorage"), json!(blob)],
                vec![
                    json!("IngestionsStatusTable"),
                    json!(format!(
                        "{}/table/ingestionsstatus?{}",
                        config.url,
                        sas_query(config, "t")
                    )),
                ],
            ];
            v1_table(
                &[("ResourceTypeName", "string"), ("StorageRoot", "string")],
                rows,
            )
        }
        Command::GetIdentityToken => v1_table(
            &[("AuthorizationContext", "string")],
            vec![vec![json!(config.authorization_context)]],
        ),
        Command::DropTable { table, if_exists } => {
            db_exists(inner)?;
            let removed = inner
                .databases
                .get_mut(db)
                .and_then(|tables| tables.remove(&table));
            if removed.is_none() && !if_exists {
                return Err(CmdError::not_found_entity(format!(
                    "Entity ID '{table}' of kind 'Table' was not found."
                )));
            }
            let rows = inner
                .databases
                .get(db)
                .map(|tables| tables.iter().map(|(n, t)| table_row(db, n, t)).collect())
                .unwrap_or_default();
            v1_table(&TABLE_COLUMNS, rows)
        }
        Command::AlterPolicy => v1_table(&[("Result", "string")], vec![vec![json!("Succeeded")]]),
    };
    Ok(v1_dataset(table))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// A query: `T`, `T | count`, `T | take N` (enough to read back what was ingested).
fn run_query(inner: &Inner, db: &str, csl_text: &str) -> Result<Value, CmdError> {
    let mut parts = csl_text.split('|').map(str::trim);
    let name = parts.next().unwrap_or("");
    let name = name
        .strip_prefix("['")
        .and_then(|n| n.strip_suffix("']"))
        .unwrap_or(name);
    let t = inner
        .databases
        .get(db)
        .and_then(|tables| tables.get(name))
        .ok_or_else(|| {
            CmdError::bad_request(
                "General_BadRequest",
                "Kusto.Data.Exceptions.SemanticException",
                format!("'{name}' could not be resolved to a table in database '{db}'."),
            )
        })?;
    let mut rows: Vec<Value> = t.rows.clone();
    for op in parts {
        let lower = op.to_ascii_lowercase();
        if lower == "count" {
            return Ok(v1_dataset(v1_table(
                &[("Count", "long")],
                vec![vec![json!(rows.len())]],
            )));
        } else if let Some(n) = lower
            .strip_prefix("take ")
            .or_else(|| lower.strip_prefix("limit "))
        {
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| CmdError::syntax(format!("bad row count in '{op}'")))?;
            rows.truncate(n);
        } else {
            return Err(CmdError::syntax(format!(
                "operator '{op}' is not supported here"
            )));
        }
    }
    let mut columns: Vec<(String, String)> = t.columns.clone();
    if columns.is_empty() {
        for r in &rows {
            if let Some(obj) = r.as_object() {
                for k in obj.keys() {
                    if !columns.iter().any(|(c, _)| c == k) {
                        columns.push((k.clone(), "dynamic".into()));
                    }
                }
            }
        }
    }
    let cols: Vec<(&str, &str)> = columns
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    let out = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|(c, _)| r.get(*c).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    Ok(v1_dataset(v1_table(&cols, out)))
}

async fn mgmt(State(shared): Ctx, headers: HeaderMap, body: Bytes) -> Response {
    command(shared, headers, body, "mgmt").await
}

async fn query(State(shared): Ctx, headers: HeaderMap, body: Bytes) -> Response {
    command(shared, headers, body, "query").await
}

async fn command(shared: Arc<Shared>, headers: HeaderMap, body: Bytes, endpoint: &str) -> Response {
    let request_id = header_str(&headers, "x-ms-client-request-id").map(str::to_string);
    let delay = shared.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let config = &shared.config;
    let mut inner = shared.lock();
    inner.stats.mgmt_commands += 1;
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let db = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("db"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let csl_text = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("csl"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let resp = match check_auth(config, &mut inner, &headers) {
        Err(r) => *r,
        Ok(()) => {
            let result = match &parsed {
                Err(e) => Err(CmdError::bad_request(
                    "BadRequest_InvalidBody",
                    "Kusto.Common.Svc.Exceptions.BadRequestException",
                    format!("the request body is not JSON {{\"db\",\"csl\"}}: {e}"),
                )),
                Ok(_) if csl_text.trim().is_empty() => Err(CmdError::syntax("empty 'csl'".into())),
                Ok(_) if endpoint == "query" && !csl_text.trim_start().starts_with('.') => {
                    run_query(&inner, &db, &csl_text)
                }
                Ok(_) => run_command(config, &mut inner, &db, &csl_text),
            };
            match result {
                Ok(v) => axum::Json(v).into_response(),
                Err(e) => oneapi(&e, request_id.as_deref()),
            }
        }
    };
    inner.mgmt_commands.push(MgmtCommand {
        endpoint: endpoint.to_string(),
        database: db,
        csl: csl_text,
        client_request_id: request_id,
        status: resp.status().as_u16(),
    });
    resp
}

// ---- Azure Storage (blob container and queue) ---------------------------------------------

fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{request_id}\nTime:{}</Message></Error>",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ")
    );
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-ms-error-code", v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-ms-request-id", v);
    }
    resp
}

fn http_date() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn storage_headers(resp: &mut Response, headers: &HeaderMap) {
    let h = resp.headers_mut();
    let version = header_str(headers, "x-ms-version")
        .unwrap_or("2025-05-05")
        .to_string();
    for (name, value) in [
        ("x-ms-request-id", uuid::Uuid::new_v4().to_string()),
        ("x-ms-version", version),
        ("date", http_date()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(v) = headers.get("x-ms-client-request-id") {
        h.insert("x-ms-client-request-id", v.clone());
    }
}

/// Checks the SAS `sig` of a storage request.
fn check_sas(config: &Config, pairs: &[(String, String)]) -> Result<(), Box<Response>> {
    if param(pairs, "sig") == Some(config.sas_signature.as_str()) {
        Ok(())
    } else {
        Err(Box::new(storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        )))
    }
}

pub(crate) fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(xml_unescape(&body[start..end]))
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

async fn blob_put(
    State(shared): Ctx,
    Path((container, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = &shared.config;
    let pairs = parse_pairs(query.as_deref().unwrap_or(""));
    if let Err(r) = check_sas(config, &pairs) {
        return *r;
    }
    if container != TEMP_CONTAINER {
        return storage_error(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        );
    }
    let key = format!("{container}/{name}");
    let mut inner = shared.lock();
    match param(&pairs, "comp") {
        Some("block") => {
            let Some(id) = param(&pairs, "blockid") else {
                return storage_error(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredQueryParameter",
                    "A query parameter that's mandatory for this request is not specified: blockid.",
                );
            };
            inner.blocks.insert((key, id.to_string()), body.to_vec());
        }
        Some("blocklist") => {
            let text = String::from_utf8_lossy(&body);
            let mut data = Vec::new();
            let mut rest: &str = &text;
            while let Some(open) = rest.find('<') {
                let after = &rest[open + 1..];
                let Some(gt) = after.find('>') else { break };
                let tag = &after[..gt];
                if matches!(tag, "Latest" | "Committed" | "Uncommitted") {
                    let close = format!("</{tag}>");
                    let Some(end) = after[gt + 1..].find(&close) else {
                        break;
                    };
                    let id = xml_unescape(&after[gt + 1..gt + 1 + end]);
                    match inner.blocks.remove(&(key.clone(), id.clone())) {
                        Some(b) => data.extend_from_slice(&b),
                        None => {
                            return storage_error(
                                StatusCode::BAD_REQUEST,
                                "InvalidBlockList",
                                "The specified block list is invalid.",
                            );
                        }
                    }
                    rest = &after[gt + 1 + end + close.len()..];
                } else {
                    rest = &after[gt + 1..];
                }
            }
            inner.blobs.insert(key, data);
            inner.stats.blobs_uploaded += 1;
        }
        Some(_) => {
            return storage_error(
                StatusCode::BAD_REQUEST,
                "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid.",
            );
        }
        None => {
            if !header_str(&headers, "x-ms-blob-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("BlockBlob"))
            {
                return storage_error(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredHeader",
                    "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type (BlockBlob).",
                );
            }
            inner.blobs.insert(key, body.to_vec());
            inner.stats.blobs_uploaded += 1;
        }
    }
    drop(inner);
    let mut resp = StatusCode::CREATED.into_response();
    storage_headers(&mut resp, &headers);
    let h = resp.headers_mut();
    let etag = format!(
        "\"0x8D{}\"",
        &uuid::Uuid::new_v4().simple().to_string()[..13].to_ascii_uppercase()
    );
    for (n, v) in [
        ("etag", etag),
        ("last-modified", http_date()),
        ("x-ms-request-server-encrypted", "true".to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(n, v);
        }
    }
    resp
}

async fn blob_get(
    State(shared): Ctx,
    Path((container, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs = parse_pairs(query.as_deref().unwrap_or(""));
    if let Err(r) = check_sas(&shared.config, &pairs) {
        return *r;
    }
    let data = shared
        .lock()
        .blobs
        .get(&format!("{container}/{name}"))
        .cloned();
    match data {
        Some(d) => {
            let mut resp = (StatusCode::OK, d).into_response();
            storage_headers(&mut resp, &headers);
            resp.headers_mut()
                .insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
            resp
        }
        None => storage_error(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        ),
    }
}

async fn queue_put(
    State(shared): Ctx,
    Path(queue): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = &shared.config;
    let pairs = parse_pairs(query.as_deref().unwrap_or(""));
    if let Err(r) = check_sas(config, &pairs) {
        return *r;
    }
    if queue != READY_QUEUE {
        return storage_error(
            StatusCode::NOT_FOUND,
            "QueueNotFound",
            "The specified queue does not exist.",
        );
    }
    let text = String::from_utf8_lossy(&body);
    let Some(message_text) = xml_text(&text, "MessageText") else {
        return storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidXmlDocument",
            "XML specified is not syntactically valid: no QueueMessage/MessageText.",
        );
    };
    // The official client uses TextBase64EncodePolicy; accept plain JSON text as well.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(message_text.trim())
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .or_else(|| serde_json::from_str::<Value>(&message_text).ok());
    {
        let mut inner = shared.lock();
        let (message, outcome) = match decoded {
            Some(m) => {
                let outcome = ingest_queued(config, &mut inner, &m);
                (m, outcome)
            }
            None => (
                Value::String(message_text.clone()),
                Err("the message text is neither base64 of JSON nor JSON".to_string()),
            ),
        };
        match &outcome {
            Ok(rows) => {
                inner.stats.queued_ingestions += 1;
                inner.stats.queued_rows += *rows as u64;
            }
            Err(_) => inner.stats.queued_failures += 1,
        }
        inner.queued.push(QueuedIngestion { message, outcome });
    }
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let xml = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>{}</MessageId><InsertionTime>{}</InsertionTime><ExpirationTime>{}</ExpirationTime><PopReceipt>{}</PopReceipt><TimeNextVisible>{}</TimeNextVisible></QueueMessage></QueueMessagesList>",
        uuid::Uuid::new_v4(),
        fmt(now),
        fmt(now + chrono::Duration::days(7)),
        base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes()),
        fmt(now),
    );
    let mut resp = (StatusCode::CREATED, xml).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    storage_headers(&mut resp, &headers);
    resp
}

/// Applies one queued-ingestion message (the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/> "Queued ingestion" step 4).
fn ingest_queued(config: &Config, inner: &mut Inner, m: &Value) -> Result<usize, String> {
    let s = |k: &str| m.get(k).and_then(Value::as_str);
    let db = s("DatabaseName").ok_or("message has no DatabaseName")?;
    let table = s("TableName").ok_or("message has no TableName")?;
    let blob_path = s("BlobPath").ok_or("message has no BlobPath")?;
    let props = m
        .get("AdditionalProperties")
        .cloned()
        .unwrap_or(Value::Null);
    let p = |k: &str| props.get(k).and_then(Value::as_str);
    if p("authorizationContext") != Some(config.authorization_context.as_str()) {
        return Err("AdditionalProperties.authorizationContext is missing or was not issued by this service (.get kusto identity token)".into());
    }
    // BlobPath: {url}/blob/{container}/{name}?{sas}
    let after_scheme = blob_path
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(blob_path);
    let path_and_query = after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if param(&parse_pairs(query), "sig") != Some(config.sas_signature.as_str()) {
        return Err(format!(
            "BlobPath '{blob_path}' has no valid SAS: the service cannot read it"
        ));
    }
    let key = path
        .strip_prefix("/blob/")
        .map(|k| percent_decode(k, false))
        .ok_or_else(|| format!("BlobPath '{blob_path}' is not a blob of this receiver"))?;
    let blob = inner
        .blobs
        .get(&key)
        .cloned()
        .ok_or_else(|| format!("BadRequest_BlobNotFound: blob '{key}' does not exist"))?;
    let data = if blob.starts_with(&[0x1f, 0x8b]) {
        decode_body(Some("gzip"), &blob, 1 << 30).map_err(|e| e.message)?
    } else {
        blob
    };
    if data.is_empty() {
        return Err("BadRequest_EmptyBlob: blob is empty".into());
    }
    let format = DataFormat::parse(p("format").unwrap_or("csv"))?;
    let mapping_kind = p("ingestionMappingType")
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| format.mapping_kind().to_string());
    if mapping_kind != format.mapping_kind() {
        return Err(format!(
            "BadRequest_InconsistentMapping: mapping kind '{mapping_kind}' does not fit format '{}'",
            p("format").unwrap_or("csv")
        ));
    }
    let inline = match p("ingestionMapping") {
        Some(text) => Some(
            formats::parse_mapping(&mapping_kind, text)
                .map_err(|e| format!("BadRequest_InvalidMapping: {e}"))?,
        ),
        None => None,
    };
    let skip_first = match props.get("ignoreFirstRecord") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let spec = IngestSpec {
        format,
        mapping_name: p("ingestionMappingReference"),
        inline_mapping: inline,
        skip_first,
    };
    ingest_into(config, inner, db, table, spec, &data)
        .map_err(|e| format!("{}: {}", e.code, e.message))
}
