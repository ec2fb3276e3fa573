//! The index template for the fields the encoder writes (the original's
//! `mappings/ecs1.4.0_compatible_minimal.json`, brought to ECS 8.x and installed for you when
//! asked: [`EcsBuilder::with_install_template`](crate::EcsBuilder::with_install_template)).
//!
//! Dates that carry nanoseconds (`@timestamp`, `event.start`, `event.end`) are `date_nanos`;
//! strings not listed are `keyword` (`ignore_above` 1024) through a dynamic template, and date
//! detection is off, as in the original. Only types both Elasticsearch 8 and OpenSearch know
//! are used (so `text` rather than `match_only_text`, `keyword` rather than
//! `constant_keyword`).

use serde_json::{Value as Json, json};

use crate::encode::{AGENT_TYPE, ECS_VERSION, EncoderConfig, IndexFrequency, IndexNaming};

/// The template's priority: above the built-in `logs-*-*` / `metrics-*-*` templates (100).
pub const TEMPLATE_PRIORITY: u64 = 200;

/// (template name, body) for a configuration.
pub(crate) fn index_template(cfg: &EncoderConfig) -> (String, Json) {
    let kw = || json!({"type": "keyword", "ignore_above": 1024});
    let long = || json!({"type": "long"});
    let nanos = || json!({"type": "date_nanos"});
    let mut mappings = json!({
        "date_detection": false,
        "dynamic_templates": [
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}
        ],
        "properties": {
            "@timestamp": nanos(),
            "message": {"type": "text"},
            "ecs": {"properties": {"version": kw()}},
            "log": {"properties": {
                "level": kw(),
                "logger": kw(),
                "origin": {"properties": {
                    "file": {"properties": {"name": kw(), "line": long()}},
                    "function": kw()
                }}
            }},
            "event": {"properties": {
                "kind": kw(), "id": kw(), "dataset": kw(), "outcome": kw(),
                "start": nanos(), "end": nanos(), "created": {"type": "date"}, "duration": long()
            }},
            "metrics": {"properties": {
                "name": kw(),
                "duration": {"properties": {"us": long()}},
                "busy": {"properties": {"us": long()}}
            }},
            "service": {"properties": {"name": kw(), "version": kw(), "environment": kw()}},
            "host": {"properties": {"name": kw(), "hostname": kw(), "id": kw(), "ip": {"type": "ip"}}},
            "process": {"properties": {"pid": long(), "thread": {"properties": {"name": kw()}}}},
            "agent": {"properties": {"type": kw(), "version": kw(), "ephemeral_id": kw()}},
            "labels": {"type": "object"},
            "error": {"properties": {"message": {"type": "text"}, "stack_trace": {"type": "text"}, "type": kw()}},
            "tracing": {"properties": {
                "parent_id": kw(),
                "correlators": kw(),
                "fields": {"type": "object"},
                "spans": {"properties": {"name": kw(), "fields": {"type": "object"}}}
            }}
        }
    });
    // ECS tracing fields, written when a record has OpenTelemetry ids (as `keyword`, as ECS
    // defines them: https://www.elastic.co/guide/en/ecs/current/ecs-tracing.html).
    #[cfg(feature = "opentelemetry")]
    if let Some(props) = mappings.get_mut("properties").and_then(Json::as_object_mut) {
        props.insert("trace".into(), json!({"properties": {"id": kw()}}));
        props.insert("span".into(), json!({"properties": {"id": kw()}}));
    }
    let (name, patterns, data_stream) = match &cfg.naming {
        IndexNaming::Dated { prefix, frequency } => {
            let pattern = match frequency {
                IndexFrequency::Never => prefix.clone(),
                _ => format!("{prefix}-*"),
            };
            (format!("logship-ecs-{prefix}"), vec![pattern], false)
        }
        IndexNaming::DataStream { namespace } => {
            if let Some(props) = mappings.get_mut("properties").and_then(Json::as_object_mut) {
                props.insert(
                    "data_stream".into(),
                    json!({"properties": {"type": kw(), "dataset": kw(), "namespace": kw()}}),
                );
            }
            (
                format!("logship-ecs-{}-{namespace}", cfg.dataset),
                vec![
                    format!("metrics-{}-{namespace}", cfg.dataset),
                    format!("logs-{}-{namespace}", cfg.dataset),
                ],
                true,
            )
        }
    };
    let mut body = json!({
        "index_patterns": patterns,
        "priority": TEMPLATE_PRIORITY,
        "template": {"mappings": mappings},
        "_meta": {"managed_by": AGENT_TYPE, "agent_version": env!("CARGO_PKG_VERSION"), "ecs_version": ECS_VERSION}
    });
    if data_stream && let Some(o) = body.as_object_mut() {
        o.insert("data_stream".into(), json!({}));
    }
    (name, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_template() {
        let cfg = EncoderConfig::minimal(IndexNaming::Dated {
            prefix: "app".into(),
            frequency: IndexFrequency::Daily,
        });
        let (name, body) = index_template(&cfg);
        assert_eq!(name, "logship-ecs-app");
        assert_eq!(body["index_patterns"], json!(["app-*"]));
        assert!(body.get("data_stream").is_none());
        assert_eq!(
            body["template"]["mappings"]["properties"]["event"]["properties"]["duration"]["type"],
            "long"
        );
        let props = &body["template"]["mappings"]["properties"];
        assert_eq!(props["host"]["properties"]["id"]["type"], "keyword");
        assert_eq!(props["error"]["properties"]["type"]["type"], "keyword");
        assert_eq!(props["error"]["properties"]["message"]["type"], "text");
    }

    #[test]
    fn data_stream_template() {
        let mut cfg = EncoderConfig::minimal(IndexNaming::DataStream {
            namespace: "prod".into(),
        });
        cfg.dataset = "shop".into();
        let (name, body) = index_template(&cfg);
        assert_eq!(name, "logship-ecs-shop-prod");
        assert_eq!(
            body["index_patterns"],
            json!(["metrics-shop-prod", "logs-shop-prod"])
        );
        assert_eq!(body["data_stream"], json!({}));
        assert_eq!(body["priority"], 200);
    }
}
