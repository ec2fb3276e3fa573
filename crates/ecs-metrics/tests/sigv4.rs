//! AWS SigV4 signing (feature `aws-sigv4`): the signature the receiver got is recomputed here
//! from the request as received, with an independent implementation of the algorithm.
#![cfg(feature = "aws-sigv4")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::{EsReceiver, EsRequest};
use sha2::{Digest, Sha256};

use common::{WAIT, builder};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(msg.iter().copied())
        .collect();
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&Sha256::digest(&inner));
    Sha256::digest(&outer).to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SigV4 as specified by AWS, for a request without a query string.
fn expected_signature(r: &EsRequest, signed: &str, date: &str, scope: &str) -> String {
    let mut canonical = format!("{}\n{}\n\n", r.method, r.path);
    for name in signed.split(';') {
        let v = r
            .header(name)
            .unwrap_or_else(|| panic!("signed header {name} missing"));
        canonical.push_str(&format!("{name}:{}\n", v.trim()));
    }
    canonical.push_str(&format!("\n{signed}\n{}", hex(&Sha256::digest(&r.body))));
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let parts: Vec<&str> = scope.split('/').collect();
    let mut key = hmac(format!("AWS4{SECRET}").as_bytes(), parts[0].as_bytes());
    for p in &parts[1..] {
        key = hmac(&key, p.as_bytes());
    }
    hex(&hmac(&key, to_sign.as_bytes()))
}

#[test]
fn bulk_requests_carry_a_valid_signature() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_aws_sigv4("eu-west-1", "AKIDEXAMPLE", SECRET)
        .build()
        .unwrap();
    layer.log_time_metric("signed", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 1);

    let r = es.last_request().unwrap();
    let auth = r.header("authorization").unwrap();
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        .unwrap();
    let (scope, rest) = rest.split_once(", SignedHeaders=").unwrap();
    let (signed, signature) = rest.split_once(", Signature=").unwrap();
    let date = r.header("x-amz-date").unwrap();
    assert!(
        scope.starts_with(&date[..8]) && scope.ends_with("/eu-west-1/es/aws4_request"),
        "{scope}"
    );
    assert!(signed.split(';').any(|h| h == "host"), "{signed}");
    assert_eq!(
        r.header("x-amz-content-sha256").unwrap(),
        hex(&Sha256::digest(&r.body))
    );
    assert_eq!(signature, expected_signature(&r, signed, date, scope));
}
