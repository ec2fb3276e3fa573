//! [`Reply`]: an HTTP answer with a body read through the byte cap.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};

use crate::retry_after::parse_retry_after;

/// An answer: status, the headers logship acts on, and at most `max_reply_bytes` of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// The `Retry-After` delay ([`parse_retry_after`](crate::parse_retry_after)).
    pub retry_after: Option<Duration>,
    /// The `Location` header of a redirect, redacted with [`logship_core::redact_url`].
    pub location: Option<String>,
    /// The body, or its first `max_reply_bytes` bytes when [`complete`](Self::complete) is
    /// false (nothing at all when the announced `Content-Length` was over the cap).
    pub body: Bytes,
    /// Whether `body` is the whole body.
    pub complete: bool,
    /// The cap the body was read under, in bytes.
    pub cap: usize,
}

impl Reply {
    /// A reply from its parts (for transports outside reqwest, such as a hand-made HTTP/1.1
    /// connection, and for tests).
    pub fn from_parts(
        status: u16,
        headers: &HeaderMap,
        body: Bytes,
        complete: bool,
        cap: usize,
    ) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
        };
        Self {
            status,
            retry_after: text(RETRY_AFTER).and_then(|v| parse_retry_after(v, SystemTime::now())),
            location: text(LOCATION).map(logship_core::redact_url),
            body,
            complete,
            cap,
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// At most [`MAX_EXCERPT_BYTES`](logship_core::excerpt::MAX_EXCERPT_BYTES) of the body
    /// as one line, for an error text.
    pub fn excerpt(&self) -> String {
        logship_core::excerpt::excerpt(&self.body)
    }

    /// Why the body is incomplete, for an error text (`None` when it is complete).
    pub fn cut_note(&self) -> Option<String> {
        (!self.complete).then(|| {
            format!(
                "the reply body was larger than the {} byte cap and was not read in full (raise it with with_max_reply_bytes if the server's replies are legitimately this large)",
                self.cap
            )
        })
    }
}

/// Reads `resp`'s body through `cap`: an announced length over the cap is not read; an
/// endless or oversized body stops at the cap (the connection is then dropped, not reused).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Reply, reqwest::Error> {
    let status = resp.status().as_u16();
    let headers = std::mem::take(resp.headers_mut());
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(Reply::from_parts(
            status,
            &headers,
            Bytes::new(),
            false,
            cap,
        ));
    }
    let mut body = BytesMut::with_capacity(
        resp.content_length()
            .map_or(0, |n| n as usize)
            .min(cap)
            .min(64 * 1024),
    );
    let mut complete = true;
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            complete = false;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply::from_parts(
        status,
        &headers,
        body.freeze(),
        complete,
        cap,
    ))
}
