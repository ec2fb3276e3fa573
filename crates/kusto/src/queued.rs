//! Queued ingestion (the Azure Data Explorer REST API documentation, <https://learn.microsoft.com/azure/data-explorer/kusto/api/rest/> "Queued ingestion"), all against the data-management
//! (`ingest-`) endpoint:
//!
//! 1. `.get ingestion resources` → `TempStorage` container and `SecuredReadyForAggregationQueue`
//!    SAS URLs (cached for an hour);
//! 2. `.get kusto identity token` → `AuthorizationContext` (cached for an hour);
//! 3. `PUT {container}/{db}__{table}__{uuid}__logship.multijson.gz?{sas}` (`x-ms-blob-type:
//!    BlockBlob`), the gzip JSON-lines body;
//! 4. `POST {queue}/messages?{sas}` with `<QueueMessage><MessageText>` base64 of the JSON
//!    ingestion message `</MessageText></QueueMessage>`.
//!
//! Storage accounts are tried in turn (up to 3) when one fails. The data becomes queryable
//! after the table's batching policy (default up to 5 minutes); a failure of the ingestion
//! itself is reported by the service asynchronously, not here.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

/// How long ingestion resources and the identity token are cached.
pub(crate) const RESOURCE_TTL: Duration = Duration::from_secs(3600);

/// SAS URLs handed out by `.get ingestion resources`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    pub(crate) containers: Vec<String>,
    pub(crate) queues: Vec<String>,
}

/// Reads a v1 dataset's first table as rows of `(column → text)`.
pub(crate) fn v1_rows(body: &[u8]) -> Result<Vec<Vec<(String, String)>>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let table = v
        .get("Tables")
        .and_then(|t| t.get(0))
        .ok_or("the answer has no table")?;
    let cols: Vec<String> = table
        .get("Columns")
        .and_then(|c| c.as_array())
        .ok_or("the answer's table has no columns")?
        .iter()
        .map(|c| {
            c.get("ColumnName")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let rows = table
        .get("Rows")
        .and_then(|r| r.as_array())
        .ok_or("the answer's table has no rows")?;
    Ok(rows
        .iter()
        .filter_map(|r| r.as_array())
        .map(|r| {
            cols.iter()
                .zip(r)
                .map(|(c, v)| {
                    (
                        c.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .collect())
}

/// Parses the `.get ingestion resources` answer.
pub(crate) fn parse_resources(body: &[u8]) -> Result<Resources, String> {
    let mut r = Resources::default();
    for row in v1_rows(body)? {
        let get = |k: &str| row.iter().find(|(c, _)| c == k).map(|(_, v)| v.clone());
        match (get("ResourceTypeName").as_deref(), get("StorageRoot")) {
            (Some("TempStorage"), Some(url)) => r.containers.push(url),
            (Some("SecuredReadyForAggregationQueue"), Some(url)) => r.queues.push(url),
            _ => {}
        }
    }
    if r.containers.is_empty() || r.queues.is_empty() {
        return Err("`.get ingestion resources` returned no TempStorage container or no SecuredReadyForAggregationQueue".into());
    }
    Ok(r)
}

/// Parses the `.get kusto identity token` answer.
pub(crate) fn parse_identity(body: &[u8]) -> Result<String, String> {
    v1_rows(body)?
        .into_iter()
        .flatten()
        .find(|(c, _)| c == "AuthorizationContext")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "`.get kusto identity token` returned no AuthorizationContext".into())
}

/// `{base}/{segment}?{query}` for a SAS URL `{base}?{query}`.
pub(crate) fn sas_child(sas_url: &str, segment: &str) -> Result<logship_http::Url, String> {
    let mut url = logship_http::Url::parse(sas_url)
        .map_err(|_| "an ingestion resource is not a URL".to_string())?;
    url.path_segments_mut()
        .map_err(|_| "an ingestion resource URL cannot have a path".to_string())?
        .pop_if_empty()
        .push(segment);
    Ok(url)
}

/// What one queue message describes.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    pub(crate) blob_url: &'a str,
    pub(crate) database: &'a str,
    pub(crate) table: &'a str,
    pub(crate) mapping: Option<&'a str>,
    pub(crate) authorization_context: &'a str,
    pub(crate) raw_size: usize,
    pub(crate) id: uuid::Uuid,
    pub(crate) created: &'a str,
    pub(crate) app: &'a str,
    pub(crate) client_version: &'a str,
}

/// The JSON ingestion message, compact, as the official client writes it.
pub(crate) fn message_json(m: &Message<'_>) -> String {
    let mut props = json!({
        "authorizationContext": m.authorization_context,
        "format": "multijson",
    });
    if let (Some(name), Some(obj)) = (m.mapping, props.as_object_mut()) {
        obj.insert("ingestionMappingReference".into(), json!(name));
        obj.insert("ingestionMappingType".into(), json!("Json"));
    }
    json!({
        "Id": m.id.to_string(),
        "BlobPath": m.blob_url,
        "RawDataSize": m.raw_size,
        "DatabaseName": m.database,
        "TableName": m.table,
        "RetainBlobOnSuccess": true,
        "FlushImmediately": false,
        "IgnoreSizeLimit": false,
        "ReportLevel": 1,
        "ReportMethod": 0,
        "SourceMessageCreationTime": m.created,
        "ApplicationForTracing": m.app,
        "ClientVersionForTracing": m.client_version,
        "AdditionalProperties": props,
    })
    .to_string()
}

/// The Put Message body: base64 of the JSON in `QueueMessage/MessageText`.
pub(crate) fn queue_body(json: &str) -> String {
    format!(
        "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
        base64::engine::general_purpose::STANDARD.encode(json)
    )
}

/// Cached resources and identity token, and which account to try first.
#[derive(Debug, Default)]
pub(crate) struct QueuedState {
    pub(crate) resources: Option<(Resources, Instant)>,
    pub(crate) identity: Option<(String, Instant)>,
    pub(crate) next: usize,
}

impl QueuedState {
    pub(crate) fn fresh_resources(&self) -> Option<Resources> {
        self.resources
            .as_ref()
            .filter(|(_, at)| at.elapsed() < RESOURCE_TTL)
            .map(|(r, _)| r.clone())
    }
    pub(crate) fn fresh_identity(&self) -> Option<String> {
        self.identity
            .as_ref()
            .filter(|(_, at)| at.elapsed() < RESOURCE_TTL)
            .map(|(r, _)| r.clone())
    }
    /// Forgets cached SAS URLs (after storage refused them).
    pub(crate) fn invalidate(&mut self) {
        self.resources = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCES: &str = r#"{"Tables":[{"TableName":"Table_0","Columns":[{"ColumnName":"ResourceTypeName","DataType":"String"},{"ColumnName":"StorageRoot","DataType":"String"}],"Rows":[["SecuredReadyForAggregationQueue","http://h/queue/q?sig=s"],["FailedIngestionsQueue","http://h/queue/f?sig=s"],["TempStorage","http://h/blob/c?sv=1&sig=s"]]}]}"#;

    #[test]
    fn resources_and_identity() {
        let r = parse_resources(RESOURCES.as_bytes()).unwrap();
        assert_eq!(r.containers, vec!["http://h/blob/c?sv=1&sig=s"]);
        assert_eq!(r.queues, vec!["http://h/queue/q?sig=s"]);
        let id = r#"{"Tables":[{"Columns":[{"ColumnName":"AuthorizationContext"}],"Rows":[["ctx-1"]]}]}"#;
        assert_eq!(parse_identity(id.as_bytes()).unwrap(), "ctx-1");
        assert!(parse_resources(br#"{"Tables":[{"Columns":[],"Rows":[]}]}"#).is_err());
    }

    #[test]
    fn sas_children() {
        assert_eq!(
            sas_child("http://h/blob/c?sv=1&sig=s", "db__T__1__x.gz")
                .unwrap()
                .as_str(),
            "http://h/blob/c/db__T__1__x.gz?sv=1&sig=s"
        );
        assert_eq!(
            sas_child("http://h/queue/q?sig=s", "messages")
                .unwrap()
                .as_str(),
            "http://h/queue/q/messages?sig=s"
        );
    }

    #[test]
    fn golden_message() {
        let m = Message {
            blob_url: "http://h/blob/c/b.gz?sig=s",
            database: "logs",
            table: "Events",
            mapping: Some("logship_v1"),
            authorization_context: "ctx",
            raw_size: 10,
            id: uuid::Uuid::nil(),
            created: "2026-01-01T00:00:00.0000000Z",
            app: "app",
            client_version: "v",
        };
        // Compared as JSON: key order depends on serde_json's `preserve_order` feature.
        let got: serde_json::Value = serde_json::from_str(&message_json(&m)).unwrap();
        assert!(!message_json(&m).contains(' '));
        let want: serde_json::Value = serde_json::from_str(
            r#"{"AdditionalProperties":{"authorizationContext":"ctx","format":"multijson","ingestionMappingReference":"logship_v1","ingestionMappingType":"Json"},"ApplicationForTracing":"app","BlobPath":"http://h/blob/c/b.gz?sig=s","ClientVersionForTracing":"v","DatabaseName":"logs","FlushImmediately":false,"Id":"00000000-0000-0000-0000-000000000000","IgnoreSizeLimit":false,"RawDataSize":10,"ReportLevel":1,"ReportMethod":0,"RetainBlobOnSuccess":true,"SourceMessageCreationTime":"2026-01-01T00:00:00.0000000Z","TableName":"Events"}"#,
        )
        .unwrap();
        assert_eq!(got, want);
        let body = queue_body("{}");
        assert_eq!(
            body,
            "<QueueMessage><MessageText>e30=</MessageText></QueueMessage>"
        );
    }
}
