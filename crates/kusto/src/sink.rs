//! [`KustoSink`]: encodes a batch into rows, splits it into requests under the streaming
//! limit, sends them by streaming or queued ingestion, and reports one `Outcome` per batch
//! (`Partial` when some requests went through and others did not; the per-request verdicts
//! are folded by [`logship_core::Fates`]). It never sleeps or loops: retries, backoff and the
//! breaker are the core's; the only repeat is one token refresh after a 401/403. Every request
//! goes through one [`HttpClient`], created on the worker thread.

use bytes::Bytes;
use logship_core::{Batch, Fates, Outcome, SendContext, Sink};
use logship_http::reqwest::{Method, RequestBuilder};
use logship_http::{HttpClient, HttpConfig, Reply};

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
    pub(crate) gzip_level: u32,
    pub(crate) fallback_after_attempts: u32,
    pub(crate) create_table: bool,
    pub(crate) layout: encode::TableLayout,
    pub(crate) telemetry: Telemetry,
}

/// The Kusto backend.
pub(crate) struct KustoSink {
    s: Settings,
    enc: RowEncoder,
    /// The compressor and staging buffer, kept from one batch to the next.
    batch: BatchEncoder,
    config: HttpConfig,
    http: Option<HttpClient>,
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

impl KustoSink {
    pub(crate) fn new(s: Settings, enc: RowEncoder, config: HttpConfig, auth: Auth) -> Self {
        Self {
            batch: BatchEncoder::with_level(s.gzip_level),
            s,
            enc,
            config,
            http: None,
            auth,
            queued: QueuedState::default(),
        }
    }

    /// The HTTP client, created at the first use (on the worker thread).
    fn http(&mut self) -> Result<HttpClient, Verdict> {
        if let Some(c) = &self.http {
            return Ok(c.clone());
        }
        let c = self.config.client().map_err(|e| Verdict::Transient {
            reason: e.to_string(),
        })?;
        self.http = Some(c.clone());
        Ok(c)
    }

    /// Sends a request built by `make(token)`; on 401/403 refreshes the token and sends once more.
    async fn with_token<F>(
        &mut self,
        what: &str,
        make: F,
        classify: fn(&Reply) -> Verdict,
    ) -> (Verdict, Option<Reply>)
    where
        F: Fn(&HttpClient, Option<&Secret>) -> Result<RequestBuilder, Verdict>,
    {
        let http = match self.http() {
            Ok(h) => h,
            Err(v) => return (v, None),
        };
        for attempt in 0..2 {
            let token = match self.auth.token(&http, &self.s.telemetry).await {
                Ok(t) => t,
                Err(v) => return (v, None),
            };
            let req = match make(&http, token.as_ref()) {
                Ok(r) => r,
                Err(v) => return (v, None),
            };
            let reply = match transport::send(&http, req, what).await {
                Ok(r) => r,
                Err(v) => return (v, None),
            };
            let v = classify(&reply);
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
                    return (v, Some(reply));
                }
                other => return (other, Some(reply)),
            }
        }
        let v = Verdict::Transient {
            reason: format!("{what}: unauthorized"),
        };
        (v, None)
    }

    /// Runs a control command on `endpoint`; returns the answer body.
    async fn mgmt(&mut self, endpoint: &str, db: &str, csl: &str) -> Result<Bytes, Verdict> {
        let url = format!("{endpoint}/v1/rest/mgmt");
        let parsed = transport::url(&url, "control command")?;
        let body = serde_json::json!({"db": db, "csl": csl}).to_string();
        let tele = self.s.telemetry.clone();
        let (v, reply) = self
            .with_token(
                "control command",
                |http, token| {
                    let mut rb = tele
                        .kusto(http.post(parsed.clone()), "logship.kusto.execute")
                        .header("content-type", "application/json; charset=utf-8")
                        .body(body.clone());
                    if let Some(t) = token {
                        rb = rb.bearer_auth(t.expose());
                    }
                    Ok(rb)
                },
                |r| classify::other("the control command endpoint", r),
            )
            .await;
        match v {
            Verdict::Delivered => match reply {
                Some(r) if r.complete => Ok(r.body),
                // A truncated answer cannot be parsed: say why instead of "not JSON".
                Some(r) => Err(Verdict::Transient {
                    reason: format!(
                        "the control command answer of {}: {}",
                        logship_core::redact_url(&url),
                        r.cut_note().unwrap_or_default()
                    ),
                }),
                None => Ok(Bytes::new()),
            },
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
        let url = match transport::url(&url, "streaming ingestion") {
            Ok(u) => u,
            Err(v) => return v,
        };
        let tele = self.s.telemetry.clone();
        self.with_token(
            "streaming ingestion",
            |http, token| {
                // No `Accept-Encoding`: the transport cannot decode a compressed answer, and
                // a gzipped error body would hide its `@permanent` flag.
                let mut rb = tele
                    .kusto(http.post(url.clone()), "logship.kusto.streamingIngest")
                    .header("content-encoding", "gzip")
                    .body(body_gz.clone());
                if let Some(t) = token {
                    rb = rb.bearer_auth(t.expose());
                }
                Ok(rb)
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
                .request(Method::PUT, url.clone())
                .header("x-ms-blob-type", "BlockBlob")
                .header("x-ms-version", transport::STORAGE_API_VERSION)
                .header("x-ms-date", transport::http_date())
                .header("content-type", "application/octet-stream")
                .body(body_gz.clone());
            last = match transport::send(&http, rb, "the blob upload").await {
                Ok(r) => classify::other("the blob upload", &r),
                Err(v) => v,
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
            last = match transport::send(&http, rb, "the queue message").await {
                Ok(r) => classify::other("the queue message", &r),
                Err(v) => v,
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
    ) -> Verdict {
        cx.record_bytes_sent(gz.len() as u64);
        match self.s.mode {
            IngestionMode::Queued => count_certificate(self.queued(gz, raw_len).await, cx),
            IngestionMode::Streaming => count_certificate(self.stream(gz).await, cx),
            IngestionMode::Managed => {
                let v = count_certificate(self.stream(gz).await, cx);
                let fall_back = matches!(v, Verdict::StreamingDisabled { .. })
                    || (v.is_retryable() && attempt >= self.s.fallback_after_attempts);
                if fall_back {
                    cx.record_bytes_sent(gz.len() as u64);
                    count_certificate(self.queued(gz, raw_len).await, cx)
                } else {
                    v
                }
            }
        }
    }
}

/// Counts a certificate failure in the stats (`Stats::certificate_failures`); returns `v`.
fn count_certificate(v: Verdict, cx: &mut SendContext) -> Verdict {
    if matches!(v, Verdict::Certificate { .. }) {
        cx.record_certificate_failure();
    }
    v
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
        let create = self.s.layout.create_table_command(&self.s.table);
        self.mgmt(&engine, &db, &create)
            .await
            .map_err(|v| format!("cannot create the table: {}", v.reason()))?;
        if let Some(m) = self.s.mapping.clone() {
            let cmd = self.s.layout.create_mapping_command(&self.s.table, &m);
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
        let mut fates = Fates::new(records.len());
        for (i, reason) in chunks.failed {
            fates.reject(i, reason);
        }
        // A failure that applies to every request (the cluster, the token, the network):
        // the remaining requests are not sent and share its verdict.
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
                        fates.reject(
                            i,
                            format!(
                                "the row is {} bytes, over the streaming ingestion limit of {} bytes; \
                                 use IngestionMode::Managed or IngestionMode::Queued for such rows",
                                row.len(),
                                self.s.max_request_bytes
                            ),
                        );
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
                fates.apply(idx, &v.to_core());
                continue;
            }
            let (gz, raw_len) = match body {
                Body::Gzip { gz, raw_len } => (gz, raw_len),
                Body::Raw(raw) => (
                    Bytes::from(logship_core::compress::gzip(&raw, self.s.gzip_level)),
                    raw.len(),
                ),
            };
            let oversized =
                self.s.mode != IngestionMode::Queued && raw_len > self.s.max_request_bytes;
            let v = if oversized {
                cx.record_bytes_sent(gz.len() as u64);
                count_certificate(self.queued(&gz, raw_len).await, cx)
            } else {
                self.send_chunk(&gz, raw_len, attempt, cx).await
            };
            fates.apply(idx, &v.to_core());
            match v {
                // Bad data in this request only: the others may go through.
                Verdict::Delivered | Verdict::Permanent { .. } => {}
                // The network, the server's load, the token or the cluster: no other request
                // can do better now.
                Verdict::Throttled { .. }
                | Verdict::Transient { .. }
                | Verdict::Certificate { .. }
                | Verdict::Unauthorized { .. }
                | Verdict::StreamingDisabled { .. } => stop = Some(v),
            }
        }
        fates.outcome()
    }
}
