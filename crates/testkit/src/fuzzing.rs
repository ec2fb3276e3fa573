//! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`). Not API: hidden from
//! the docs, and free to change. Each function feeds untrusted bytes to one of the receivers'
//! decoders exactly as the receiver does, and only returns: a panic, a hang or an unbounded
//! allocation is the finding.

/// The Fluent receiver's transport phase: `data` arrives on a connection in reads of the
/// sizes `cuts` picks (1..=64 bytes each), is framed by the resumable framer, and every
/// complete object is decoded (request modes, EventTime, option map, gzip blobs); each event
/// is then turned into JSON as [`crate::fluent::FluentEvent::record_json`] does.
#[cfg(feature = "fluent")]
pub fn fluent_stream(cuts: &[u8], data: &[u8]) {
    use crate::fluent::wire::{Frame, Framer, decode_frame, encode_ack};
    let mut framer = Framer::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut cut = cuts.iter().cycle();
    while fed < data.len() {
        let n = cut.next().map_or(data.len(), |c| usize::from(c % 64) + 1);
        let end = (fed + n).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        let mut start = 0;
        loop {
            match framer.scan(&buf[start..]) {
                Ok(Some(len)) => {
                    let obj = &buf[start..start + len];
                    start += len;
                    framer.reset();
                    if let Ok(Frame::Request(r)) = decode_frame(obj) {
                        for (time, record) in r.entries {
                            let _ = time.as_nanos();
                            let ev = crate::fluent::FluentEvent {
                                tag: r.tag.clone(),
                                time,
                                record,
                                mode: r.mode,
                                chunk: None,
                                duplicate: false,
                                connection: 1,
                            };
                            let _ = ev.record_json();
                            let _ = ev.field("message");
                        }
                        if let Some(chunk) = r.chunk {
                            let _ = encode_ack(&chunk);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        buf.drain(..start);
    }
}

/// The Fluent receiver's handshake phase: `data` as the client's PING, checked for both HELO
/// styles with and without users.
#[cfg(feature = "fluent")]
pub fn fluent_ping(data: &[u8]) {
    use crate::fluent::HeloStyle;
    use crate::fluent::handshake::PingCheck;
    let Ok(ping) = rmpv::decode::read_value(&mut &data[..]) else {
        return;
    };
    let users = [("alice".to_string(), "secret".to_string())];
    for style in [HeloStyle::Fluentd, HeloStyle::FluentBit] {
        for users in [&users[..], &[]] {
            let check = PingCheck {
                style,
                shared_key: b"key",
                self_hostname: "receiver",
                users,
                nonce: &[7; 16],
                auth: &[9; 16],
            };
            let _ = check.check(&ping);
        }
    }
}

/// The Elasticsearch receiver's `_bulk` handling: the body is parsed (NDJSON action and source
/// lines) and every item applied to a store with the built-in data-stream templates (index
/// name checks, data-stream rules, `@timestamp` date parsing, versions, partial updates).
/// `data[0]` picks the URL's default index; the rest is the body.
#[cfg(feature = "es")]
pub fn es_bulk(data: &[u8]) {
    use crate::es::bulk::{Store, Template, parse};
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let default_index = match pick % 3 {
        0 => None,
        1 => Some("logs"),
        _ => Some("logs-app-default"),
    };
    let Ok(items) = parse(body, default_index) else {
        return;
    };
    let mut store = Store::default();
    for (name, pattern) in [("logs", "logs-*-*"), ("metrics", "metrics-*-*")] {
        store
            .templates
            .insert(name.to_string(), Template::builtin(pattern));
    }
    for item in &items {
        let _ = store.apply(item);
    }
}

/// The Elasticsearch receiver's `PUT /_index_template/{name}` body check, then a bulk body
/// against a store holding that template (`data` is `template JSON \0 bulk body`).
#[cfg(feature = "es")]
pub fn es_template(data: &[u8]) {
    use crate::es::bulk::{Store, Template, parse, wildcard_match};
    let (tpl, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(tpl) else {
        return;
    };
    let Ok(t) = Template::from_body(value) else {
        return;
    };
    for p in &t.patterns {
        let _ = wildcard_match(p, "logs-app-default");
    }
    let mut store = Store::default();
    store.templates.insert("t".into(), t);
    if let Ok(items) = parse(body, Some("logs-app-default")) {
        for item in &items {
            let _ = store.apply(item);
        }
    }
}

/// The Kusto receiver's control-command parser (`.create table`, mappings, `.show`, …).
#[cfg(feature = "kusto")]
pub fn kusto_csl(text: &str) {
    if let Ok(crate::kusto::csl::Command::CreateMapping { kind, mapping, .. }) =
        crate::kusto::csl::parse(text)
    {
        let _ = crate::kusto::formats::parse_mapping(&kind, &mapping);
    }
    let _ = crate::kusto::csl::canonical_type(text);
    let _ = crate::kusto::csl::data_type(text);
}

/// The Kusto receiver's ingestion path: `data` is `format \0 mapping \0 payload`; the format
/// name and mapping are parsed as the receiver parses `streamFormat` and an inline mapping,
/// the payload is split into records and each record turned into a row of a small table.
#[cfg(feature = "kusto")]
pub fn kusto_ingest(data: &[u8]) {
    use crate::kusto::formats::{DataFormat, parse_mapping, records, to_row};
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(format), Some(mapping), Some(payload)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Ok(format) = DataFormat::parse(&String::from_utf8_lossy(format)) else {
        return;
    };
    let mapping = if mapping.is_empty() {
        None
    } else {
        match parse_mapping(format.mapping_kind(), &String::from_utf8_lossy(mapping)) {
            Ok(m) => Some(m),
            Err(_) => return,
        }
    };
    let Ok(recs) = records(format, payload) else {
        return;
    };
    let columns: Vec<(String, String)> = [
        ("Timestamp", "datetime"),
        ("Level", "string"),
        ("Count", "long"),
        ("Ratio", "real"),
        ("Ok", "bool"),
        ("Took", "timespan"),
        ("Id", "guid"),
        ("Props", "dynamic"),
        ("N", "int"),
        ("D", "decimal"),
    ]
    .iter()
    .map(|(c, t)| (c.to_string(), t.to_string()))
    .collect();
    for (i, r) in recs.into_iter().enumerate() {
        let cols: &[(String, String)] = if i % 2 == 0 { &columns } else { &[] };
        let _ = to_row(r, mapping.as_ref(), cols);
    }
}

/// The Kusto receiver's small HTTP-side parsers: query strings / form bodies and the XML of
/// the Azure Storage queue messages.
#[cfg(feature = "kusto")]
pub fn kusto_http_text(text: &str) {
    let _ = crate::kusto::http::parse_pairs(text);
    let _ = crate::kusto::http::percent_decode(text, false);
    let _ = crate::kusto::http::xml_text(text, "MessageText");
}

/// The jKool receiver's checks of a posted document (`data` as the JSON body, one document or
/// an array, validated as an event, an activity and a snapshot) and of the handshake body.
#[cfg(feature = "jkool")]
pub fn jkool_documents(data: &[u8]) {
    use crate::jkool::validate::{Kind, check_fqn, validate};
    let _ = crate::jkool::http::access_request_token(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = check_fqn(text);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let docs = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    for doc in &docs {
        for kind in [Kind::Event, Kind::Activity, Kind::Snapshot] {
            let _ = validate(kind, doc);
        }
    }
}
