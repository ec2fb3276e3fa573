//! [`KustoSink`]: encodes a batch into rows, splits it into requests under the streaming
//! limit, sends them by streaming or queued ingestion, and reports one `Outcome` per batch
//! (`Partial` when some requests went through and others did not). It never sleeps or loops:
//! retries, backoff and the breaker are the core's; the only repeat is one token refresh
//! after a 401/403.

use std::time::Duration;

use bytes::Bytes;
use logship_core::{Batch, Outcome, SendContext, Sink};

use crate::IngestionMode;
use crate::auth::Auth;
use crate::classify::{self, Verdict};
use crate::encode::{self, BatchEncoder, RowEncoder};
use crate::error::Secret;
use crate::queued::{self, QueuedState};
use crate::transport::{self, Telemetry};

/// Everything the sink needs, resolved by `build()`.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) engine: String,
    pub(crate) ingest: String,
    pub(crate) database: String,
    pub(crate) table: String,
    pub(crate) mapping: Option<String>,
    pub(crate) mode: IngestionMode,
    pub(crate) max_request_bytes: usize,
    pub(crate) fallback_after_attempts: u32,
    pub(crate) create_table: bool,
    pub(crate) request_timeout: Duration,
    pub(crate) telemetry: Telemetry,
}

/// The Kusto backend.
pub(crate) struct KustoSink {
    s: Settings,
    enc: RowEncoder,
    /// The compressor and staging buffer, kept from one batch to the next.
    batch: BatchEncoder,
    tls: Option<rustls::ClientConfig>,
    http: Option<reqwest::Client>,
    auth: Auth,
    queued: QueuedState,
}

impl std::fmt::Debug for KustoSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KustoSink")
            .field("settings", &self.s)
            .finish_non_exhaustive()
    }
}

/// A request's body: compressed while encoding, or (oversized rows, rare) compressed only
/// when it is sent.
enum Body {
    Gzip { gz: Bytes, raw_len: usize },
    Raw(Vec<u8>),
}

/// How one request (a chunk of rows) ended.
enum ChunkResult {
    Delivered,
    Failed(Verdict),
}

impl KustoSink {
    pub(crate) fn new(s: Settings, enc: RowEncoder, tls: rustls::ClientConfig, auth: Auth) -> Self {
        Self {
            s,
            enc,
            batch: BatchEncoder::new(),
            tls: Some(tls),
            http: None,
            auth,
            queued: QueuedState::default(),
        }
    }

    fn http(&mut self) -> Result<reqwest::Client, Verdict> {
        if let Some(c) = &self.http {
            return Ok(c.clone());
        }
        let tls = self.tls.clone().ok_or_else(|| Verdict::Permanent {
            reason: "no TLS configuration".into(),
        })?;
        let c = transport::client(tls, self.s.request_timeout)
            .map_err(|reason| Verdict::Transient { reason })?;
        self.http = Some(c.clone());
        Ok(c)
    }

    /// Sends a request built by `make(token)`; on 401/403 refreshes the token and sends once more.
    async fn with_token<F>(
        &mut self,
        what: &str,
        make: F,
        classify: fn(u16, Option<&str>, &[u8]) -> Verdict,
    ) -> (Verdict, Vec<u8>)
    where
        F: Fn(&reqwest::Client, Option<&Secret>) -> reqwest::RequestBuilder,
    {
        let http = match self.http() {
            Ok(h) => h,
            Err(v) => return (v, Vec::new()),
        };
        for attempt in 0..2 {
            let token = match self.auth.token(&http, &self.s.telemetry).await {
                Ok(t) => t,
                Err(v) => return (v, Vec::new()),
            };
            let reply = match transport::execute(make(&http, token.as_ref())).await {
                Ok(r) => r,
                Err(reason) => {
                    let v = Verdict::Transient {
                        reason: format!("{what}: {reason}"),
                    };
                    return (v, Vec::new());
                }
            };
            let v = classify(reply.status, reply.retry_after.as_deref(), &reply.body);
            match v {
                Verdict::Unauthorized { .. } if attempt == 0 => self.auth.invalidate(),
                Verdict::Unauthorized { reason } => {
                    let hint = match self.auth.scope() {
                        Some(scope) => format!(
                            "refused again with a freshly acquired token: check that the identity has the \
                             Ingestor role on database `{}` and that the tenant and scope `{scope}` are right",
                            self.s.database
                        ),
                        // A fixed token (`with_token`/`UserToken`/`ApplicationToken`): nothing
                        // to acquire again, so say what to check about the token itself.
                        None => format!(
                            "refused again with the configured token: check that it has not expired, that \
                             its audience is this cluster, and that its identity has the Ingestor role on \
                             database `{}`",
                            self.s.database
                        ),
                    };
                    let v = Verdict::Unauthorized {
                        reason: format!("{reason} ({hint})"),
                    };
                    return (v, reply.body);
                }
                other => return (other, reply.body),
            }
        }
        let v = Verdict::Transient {
            reason: format!("{what}: unauthorized"),
        };
        (v, Vec::new())
    }

    /// Runs a control command on `endpoint`; returns the answer body.
    async fn mgmt(&mut self, endpoint: &str, db: &str, csl: &str) -> Result<Vec<u8>, Verdict> {
        let url = format!("{endpoint}/v1/rest/mgmt");
        let body = serde_json::json!({"db": db, "csl": csl}).to_string();
        let tele = self.s.telemetry.clone();
        let (v, reply) = self
            .with_token(
                "control command",
                |http, token| {
                    let mut rb = tele
                        .kusto(http.post(&url), "logship.kusto.execute")
                        .header("content-type", "application/json; charset=utf-8")
                        .body(body.clone());
                    if let Some(t) = token {
                        rb = rb.bearer_auth(t.expose());
                    }
                    rb
                },
                |status, ra, body| {
                    classify::other("the control command endpoint", status, ra, body)
                },
            )
            .await;
        match v {
            Verdict::Delivered => Ok(reply),
            mut other => {
                // Name the endpoint: a failed `.create-merge table` is otherwise anonymous.
                other.append_to_reason(&format!(" ({})", logship_core::redact_url(&url)));
                Err(other)
            }
        }
    }

    async fn stream(&mut self, body_gz: &Bytes) -> Verdict {
        let mut url = format!(
            "{}/v1/rest/ingest/{}/{}?streamFormat=multijson",
            self.s.engine,
            path_segment(&self.s.database),
            path_segment(&self.s.table)
        );
        if let Some(m) = &self.s.mapping {
            url.push_str("&mappingName=");
            url.push_str(&crate::auth::form_encode(&[("", m)])[1..]);
        }
        let tele = self.s.telemetry.clone();
        self.with_token(
            "streaming ingestion",
            |http, token| {
                let mut rb = tele
                    .kusto(http.post(&url), "logship.kusto.streamingIngest")
                    .header("content-encoding", "gzip")
                    .header("accept-encoding", "gzip,deflate")
                    .body(body_gz.clone());
                if let Some(t) = token {
                    rb = rb.bearer_auth(t.expose());
                }
                rb
            },
            classify::streaming,
        )
        .await
        .0
    }

    async fn queued(&mut self, body_gz: &Bytes, raw_size: usize) -> Verdict {
        let ingest = self.s.ingest.clone();
        let resources = match self.queued.fresh_resources() {
            Some(r) => r,
            None => {
                let body = match self
                    .mgmt(&ingest, "NetDefaultDB", ".get ingestion resources")
                    .await
                {
                    Ok(b) => b,
                    Err(v) => return v,
                };
                match queued::parse_resources(&body) {
                    Ok(r) => {
                        self.queued.resources = Some((r.clone(), std::time::Instant::now()));
                        r
                    }
                    Err(reason) => return Verdict::Transient { reason },
                }
            }
        };
        let identity = match self.queued.fresh_identity() {
            Some(i) => i,
            None => {
                let body = match self
                    .mgmt(&ingest, "NetDefaultDB", ".get kusto identity token")
                    .await
                {
                    Ok(b) => b,
                    Err(v) => return v,
                };
                match queued::parse_identity(&body) {
                    Ok(i) => {
                        self.queued.identity = Some((i.clone(), std::time::Instant::now()));
                        i
                    }
                    Err(reason) => return Verdict::Transient { reason },
                }
            }
        };
        let http = match self.http() {
            Ok(h) => h,
            Err(v) => return v,
        };
        let id = uuid::Uuid::new_v4();
        let blob_name = format!(
            "{}__{}__{}__logship.multijson.gz",
            self.s.database, self.s.table, id
        );
        // 1. the blob, on up to 3 accounts.
        let mut last = Verdict::Transient {
            reason: "no storage account".into(),
        };
        let mut blob_url = None;
        let n = resources.containers.len();
        for k in 0..n.min(3) {
            let container = &resources.containers[(self.queued.next + k) % n];
            let url = match queued::sas_child(container, &blob_name) {
                Ok(u) => u,
                Err(reason) => {
                    last = Verdict::Permanent { reason };
                    continue;
                }
            };
            let rb = http
                .put(url.clone())
                .header("x-ms-blob-type", "BlockBlob")
                .header("x-ms-version", transport::STORAGE_API_VERSION)
                .header("x-ms-date", transport::http_date())
                .header("content-type", "application/octet-stream")
                .body(body_gz.clone());
            last = match transport::execute(rb).await {
                Ok(r) => classify::other(
                    "the blob upload",
                    r.status,
                    r.retry_after.as_deref(),
                    &r.body,
                ),
                Err(reason) => Verdict::Transient {
                    reason: format!("the blob upload: {reason}"),
                },
            };
            if last == Verdict::Delivered {
                blob_url = Some(url);
                break;
            }
        }
        let Some(blob_url) = blob_url else {
            self.queued.invalidate();
            return last;
        };
        // 2. the queue message.
        let created = {
            let mut b = Vec::new();
            logship_core::json_text::write_rfc3339_ticks(&mut b, logship_core::Timestamp::now());
            String::from_utf8_lossy(&b).into_owned()
        };
        let msg = queued::message_json(&queued::Message {
            blob_url: blob_url.as_str(),
            database: &self.s.database,
            table: &self.s.table,
            mapping: self.s.mapping.as_deref(),
            authorization_context: &identity,
            raw_size,
            id,
            created: &created,
            app: &self.s.telemetry.app,
            client_version: &self.s.telemetry.client_version,
        });
        let xml = queued::queue_body(&msg);
        let n = resources.queues.len();
        for k in 0..n.min(3) {
            let queue = &resources.queues[(self.queued.next + k) % n];
            let url = match queued::sas_child(queue, "messages") {
                Ok(u) => u,
                Err(reason) => {
                    last = Verdict::Permanent { reason };
                    continue;
                }
            };
            let rb = http
                .post(url)
                .header("x-ms-version", transport::STORAGE_API_VERSION)
                .header("x-ms-date", transport::http_date())
                .header("content-type", "application/xml")
                .body(xml.clone());
            last = match transport::execute(rb).await {
                Ok(r) => classify::other(
                    "the queue message",
                    r.status,
                    r.retry_after.as_deref(),
                    &r.body,
                ),
                Err(reason) => Verdict::Transient {
                    reason: format!("the queue message: {reason}"),
                },
            };
            if last == Verdict::Delivered {
                self.queued.next = self.queued.next.wrapping_add(1);
                return Verdict::Delivered;
            }
        }
        self.queued.invalidate();
        last
    }

    /// Sends one chunk (`gz`: the gzip of `raw_len` bytes of rows) per the ingestion mode.
    async fn send_chunk(
        &mut self,
        gz: &Bytes,
        raw_len: usize,
        attempt: u32,
        cx: &mut SendContext,
    ) -> ChunkResult {
        cx.record_bytes_sent(gz.len() as u64);
        let v = match self.s.mode {
            IngestionMode::Queued => self.queued(gz, raw_len).await,
            IngestionMode::Streaming => self.stream(gz).await,
            IngestionMode::Managed => {
                let v = self.stream(gz).await;
                let fall_back = matches!(v, Verdict::StreamingDisabled { .. })
                    || (v.is_retryable() && attempt >= self.s.fallback_after_attempts);
                if fall_back {
                    cx.record_bytes_sent(gz.len() as u64);
                    self.queued(gz, raw_len).await
                } else {
                    v
                }
            }
        };
        match v {
            Verdict::Delivered => ChunkResult::Delivered,
            other => ChunkResult::Failed(other),
        }
    }
}

/// Percent-encodes one path segment.
fn path_segment(s: &str) -> String {
    crate::auth::form_encode(&[("", s)])[1..].to_string()
}

impl Sink for KustoSink {
    fn name(&self) -> &'static str {
        "kusto"
    }

    async fn start(&mut self) -> Result<(), String> {
        self.http().map_err(|v| v.reason().to_string())?;
        if !self.s.create_table {
            return Ok(());
        }
        let engine = self.s.engine.clone();
        let db = self.s.database.clone();
        let create = encode::create_table_command(&self.s.table);
        self.mgmt(&engine, &db, &create)
            .await
            .map_err(|v| format!("cannot create the table: {}", v.reason()))?;
        if let Some(m) = self.s.mapping.clone() {
            let cmd = encode::create_mapping_command(&self.s.table, &m);
            self.mgmt(&engine, &db, &cmd)
                .await
                .map_err(|v| format!("cannot create the ingestion mapping: {}", v.reason()))?;
        }
        Ok(())
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        let records = batch.records();
        let limit = match self.s.mode {
            // Queued ingestion has no 4 MiB limit; keep blobs to a sane size anyway.
            IngestionMode::Queued => 256 * 1024 * 1024,
            _ => self.s.max_request_bytes,
        };
        // The requests' uncompressed bodies, concatenated, when the core asks for them.
        let mut payload = cx.wants_payload().then(Vec::new);
        let chunks = self
            .batch
            .encode(&self.enc, records, limit, payload.as_mut());
        if let Some(all) = payload {
            cx.set_payload(all);
        }
        let mut retry: Vec<usize> = Vec::new();
        let mut rejected: Vec<(usize, String)> = chunks.failed;
        let mut after: Option<Duration> = None;
        let mut reason = String::new();
        // A failure that applies to every request (the cluster, the token): skip the rest.
        let mut stop: Option<Verdict> = None;
        let attempt = cx.attempt();
        // (body, record indices) per request.
        let mut groups: Vec<(Body, Vec<usize>)> = chunks
            .requests
            .into_iter()
            .map(|q| {
                let body = Body::Gzip {
                    gz: Bytes::from(q.gzip),
                    raw_len: q.raw_len,
                };
                (body, q.records)
            })
            .collect();
        if !chunks.oversized.is_empty() {
            match self.s.mode {
                IngestionMode::Streaming => {
                    for (i, row) in chunks.oversized {
                        rejected.push((
                            i,
                            format!(
                                "the row is {} bytes, over the streaming ingestion limit of {} bytes; \
                                 use IngestionMode::Managed or IngestionMode::Queued for such rows",
                                row.len(),
                                self.s.max_request_bytes
                            ),
                        ));
                    }
                }
                _ => {
                    let mut body = Vec::new();
                    let mut idx = Vec::new();
                    for (i, row) in chunks.oversized {
                        body.extend_from_slice(&row);
                        idx.push(i);
                    }
                    groups.push((Body::Raw(body), idx));
                }
            }
        }
        for (body, idx) in groups {
            if let Some(v) = &stop {
                match v {
                    Verdict::Throttled { .. } | Verdict::Transient { .. } => retry.extend(idx),
                    other => {
                        rejected.extend(idx.into_iter().map(|i| (i, other.reason().to_string())))
                    }
                }
                continue;
            }
            let (gz, raw_len) = match body {
                Body::Gzip { gz, raw_len } => (gz, raw_len),
                Body::Raw(raw) => (Bytes::from(encode::gzip(&raw)), raw.len()),
            };
            let oversized =
                self.s.mode != IngestionMode::Queued && raw_len > self.s.max_request_bytes;
            let result = if oversized {
                cx.record_bytes_sent(gz.len() as u64);
                match self.queued(&gz, raw_len).await {
                    Verdict::Delivered => ChunkResult::Delivered,
                    v => ChunkResult::Failed(v),
                }
            } else {
                self.send_chunk(&gz, raw_len, attempt, cx).await
            };
            match result {
                ChunkResult::Delivered => {}
                ChunkResult::Failed(v) => {
                    reason = v.reason().to_string();
                    match &v {
                        Verdict::Throttled { after: a, .. } => {
                            after = after.max(*a);
                            retry.extend(idx);
                            stop = Some(v);
                        }
                        Verdict::Transient { .. } => {
                            retry.extend(idx);
                            stop = Some(v);
                        }
                        // Bad data in this request only: the others may go through.
                        Verdict::Permanent { .. } => {
                            rejected.extend(idx.into_iter().map(|i| (i, reason.clone())));
                        }
                        // The token or the cluster: no other request can succeed either.
                        Verdict::Unauthorized { .. }
                        | Verdict::StreamingDisabled { .. }
                        | Verdict::Delivered => {
                            rejected.extend(idx.into_iter().map(|i| (i, reason.clone())));
                            stop = Some(v);
                        }
                    }
                }
            }
        }
        let n = records.len();
        if retry.is_empty() && rejected.is_empty() {
            Outcome::Delivered
        } else if retry.len() == n {
            Outcome::Retry { after, reason }
        } else if rejected.len() == n && rejected.iter().all(|(_, r)| *r == rejected[0].1) {
            Outcome::Rejected {
                reason: rejected.swap_remove(0).1,
            }
        } else {
            retry.sort_unstable();
            rejected.sort_unstable_by_key(|(i, _)| *i);
            Outcome::Partial {
                retry,
                rejected,
                after,
            }
        }
    }
}
