//! Pure Forward-protocol decoding and encoding: framing, the four event modes, EventTime,
//! the option map and the ack reply (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1>, "Transport and framing",
//! "Event modes", "EventTime", "Option map", "Ack response").
//!
//! Nothing here touches a socket, so the unit tests at the bottom pin exact bytes.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use rmpv::Value;

use super::{EventTimeValue, Mode, TimeEncoding};

/// Deepest container nesting the framer accepts (rmpv's own decoder stops at 1024 too).
const MAX_DEPTH: usize = 1000;

/// A request failed to decode; the message says what was wrong (for [`super::FluentReceiver::errors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

impl DecodeError {
    fn new(msg: impl Into<String>) -> Self {
        DecodeError(msg.into())
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

/// Finds where one complete msgpack value ends in a growing buffer, without decoding it.
///
/// Resumable: when the value is not complete yet it keeps its position, so feeding a request
/// in many small reads costs linear time overall. Reset it after each complete value.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    pos: usize,
    /// Items still expected by each open container (map entries count twice).
    open: Vec<u64>,
}

impl Framer {
    /// Starts over for the next value (call after a complete one was taken off the buffer).
    pub(crate) fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
    }

    /// `Ok(Some(end))`: `buf[..end]` is one complete value. `Ok(None)`: more bytes are needed.
    /// `Err`: the bytes can never be msgpack (reserved marker `0xc1`, nesting too deep).
    pub(crate) fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        loop {
            let Some(&marker) = buf.get(self.pos) else {
                return Ok(None);
            };
            let Some((header, payload, children)) = item_size(marker, &buf[self.pos..])? else {
                return Ok(None);
            };
            let total = header as u64 + payload;
            if ((buf.len() - self.pos) as u64) < total {
                return Ok(None);
            }
            self.pos += total as usize;
            if children > 0 {
                if self.open.len() >= MAX_DEPTH {
                    return Err(DecodeError::new("msgpack nesting too deep"));
                }
                self.open.push(children);
                continue;
            }
            // One item finished; close every container it completes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(self.pos)),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

/// `(header bytes, payload bytes, child items)` of the item starting at `bytes[0]`, or `None`
/// when the header itself is not complete yet.
fn item_size(marker: u8, bytes: &[u8]) -> Result<Option<(usize, u64, u64)>> {
    // Reads a big-endian length of `n` bytes right after the marker.
    let len = |n: usize| -> Option<u64> {
        let b = bytes.get(1..1 + n)?;
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let sized = |n: usize, extra_header: usize| -> Option<(usize, u64, u64)> {
        let l = len(n)?;
        if bytes.len() < 1 + n + extra_header {
            return None;
        }
        Some((1 + n + extra_header, l, 0))
    };
    let counted = |n: usize, per: u64| -> Option<(usize, u64, u64)> {
        let l = len(n)?;
        Some((1 + n, 0, l * per))
    };
    Ok(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some((1, 0, 0)),
        0x80..=0x8f => Some((1, 0, u64::from(marker & 0x0f) * 2)),
        0x90..=0x9f => Some((1, 0, u64::from(marker & 0x0f))),
        0xa0..=0xbf => Some((1, u64::from(marker & 0x1f), 0)),
        0xc1 => return Err(DecodeError::new("reserved msgpack marker 0xc1")),
        0xc4 | 0xd9 => sized(1, 0),
        0xc5 | 0xda => sized(2, 0),
        0xc6 | 0xdb => sized(4, 0),
        0xc7 => sized(1, 1),
        0xc8 => sized(2, 1),
        0xc9 => sized(4, 1),
        0xca => Some((1, 4, 0)),
        0xcb => Some((1, 8, 0)),
        0xcc | 0xd0 => Some((1, 1, 0)),
        0xcd | 0xd1 => Some((1, 2, 0)),
        0xce | 0xd2 => Some((1, 4, 0)),
        0xcf | 0xd3 => Some((1, 8, 0)),
        0xd4 => Some((2, 1, 0)),
        0xd5 => Some((2, 2, 0)),
        0xd6 => Some((2, 4, 0)),
        0xd7 => Some((2, 8, 0)),
        0xd8 => Some((2, 16, 0)),
        0xdc => counted(2, 1),
        0xdd => counted(4, 1),
        0xde => counted(2, 2),
        0xdf => counted(4, 2),
    })
}

/// One decoded top-level object of the transport phase.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// A bare `nil`: the spec's keep-alive.
    Nil,
    /// An event request in one of the four modes.
    Request(Request),
}

/// An event request, decoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub(crate) tag: String,
    pub(crate) mode: Mode,
    pub(crate) entries: Vec<(EventTimeValue, Value)>,
    /// The `chunk` option as raw str bytes (echoed byte for byte in the ack).
    pub(crate) chunk: Option<Vec<u8>>,
    /// (Compressed)PackedForward: where each entry ends in the (decompressed) blob, in bytes;
    /// empty for the other modes.
    pub(crate) entry_ends: Vec<usize>,
}

/// A read cursor over one complete msgpack object.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Result<u8> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| DecodeError::new("unexpected end of data"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| DecodeError::new("unexpected end of data"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Length of an array header, or an error naming `what`.
    fn array_len(&mut self, what: &str) -> Result<u64> {
        let m = self.peek()?;
        let n = match m {
            0x90..=0x9f => {
                self.pos += 1;
                u64::from(m & 0x0f)
            }
            0xdc => {
                self.pos += 1;
                self.be(2)?
            }
            0xdd => {
                self.pos += 1;
                self.be(4)?
            }
            _ => {
                return Err(DecodeError::new(format!(
                    "{what}: expected an array, got marker 0x{m:02x}"
                )));
            }
        };
        Ok(n)
    }

    /// A str or bin: `(is_str, bytes)`, or `None` when the next item is neither.
    fn raw(&mut self) -> Result<Option<(bool, &'a [u8])>> {
        let m = self.peek()?;
        let (is_str, len_bytes, fixlen) = match m {
            0xa0..=0xbf => (true, 0, usize::from(m & 0x1f)),
            0xd9 => (true, 1, 0),
            0xda => (true, 2, 0),
            0xdb => (true, 4, 0),
            0xc4 => (false, 1, 0),
            0xc5 => (false, 2, 0),
            0xc6 => (false, 4, 0),
            _ => return Ok(None),
        };
        self.pos += 1;
        let len = if len_bytes == 0 {
            fixlen
        } else {
            self.be(len_bytes)? as usize
        };
        Ok(Some((is_str, self.take(len)?)))
    }

    /// Any value, via rmpv.
    fn value(&mut self) -> Result<Value> {
        let mut rest = &self.buf[self.pos..];
        let before = rest.len();
        let v = rmpv::decode::read_value(&mut rest)
            .map_err(|e| DecodeError::new(format!("invalid msgpack value: {e}")))?;
        self.pos += before - rest.len();
        Ok(v)
    }

    /// An event time: integer seconds, or EventTime as fixext8 (`D7 00`) or ext8 (`C7 08 00`).
    fn time(&mut self) -> Result<EventTimeValue> {
        let m = self.peek()?;
        match m {
            0xd7 | 0xc7 => {
                self.pos += 1;
                let encoding = if m == 0xd7 {
                    TimeEncoding::FixExt8
                } else {
                    let len = self.be(1)?;
                    if len != 8 {
                        return Err(DecodeError::new(format!(
                            "EventTime as ext8 must carry 8 bytes, got {len}"
                        )));
                    }
                    TimeEncoding::Ext8
                };
                let ty = self.take(1)?[0];
                if ty != 0 {
                    return Err(DecodeError::new(format!(
                        "time is an ext of type {}, EventTime is type 0",
                        ty as i8
                    )));
                }
                let secs = self.be(4)?;
                let nanos = self.be(4)? as u32;
                if nanos >= 1_000_000_000 {
                    return Err(DecodeError::new(format!(
                        "EventTime nanoseconds {nanos} >= 10^9"
                    )));
                }
                Ok(EventTimeValue {
                    secs,
                    nanos,
                    encoding,
                })
            }
            0x00..=0x7f | 0xcc..=0xcf | 0xd0..=0xd3 | 0xe0..=0xff => match self.value()? {
                Value::Integer(i) => match i.as_u64() {
                    Some(secs) => Ok(EventTimeValue {
                        secs,
                        nanos: 0,
                        encoding: TimeEncoding::Integer,
                    }),
                    None => Err(DecodeError::new(format!("negative time {i}"))),
                },
                _ => Err(DecodeError::new("time: expected an integer")),
            },
            _ => Err(DecodeError::new(format!(
                "time must be an integer or EventTime (ext type 0, fixext8/ext8), got marker 0x{m:02x}"
            ))),
        }
    }

    /// One `[time, record]` entry.
    fn entry(&mut self) -> Result<(EventTimeValue, Value)> {
        let n = self.array_len("entry")?;
        if n != 2 {
            return Err(DecodeError::new(format!(
                "entry must be [time, record], got {n} elements"
            )));
        }
        let time = self.time()?;
        let record = record(self.value()?)?;
        Ok((time, record))
    }
}

/// A record must be a map with string keys (the Forward protocol v1 specification, <https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1> "Event modes").
fn record(v: Value) -> Result<Value> {
    match &v {
        Value::Map(entries) => {
            if let Some((k, _)) = entries.iter().find(|(k, _)| !k.is_str()) {
                return Err(DecodeError::new(format!("record key is not a string: {k}")));
            }
            Ok(v)
        }
        other => Err(DecodeError::new(format!(
            "record must be a map, got {other}"
        ))),
    }
}

/// The parts of the option map the server acts on.
#[derive(Default)]
struct Options {
    chunk: Option<Vec<u8>>,
    gzip: bool,
}

fn options(v: Value) -> Result<Options> {
    let entries = match v {
        Value::Nil => return Ok(Options::default()),
        Value::Map(entries) => entries,
        other => {
            return Err(DecodeError::new(format!(
                "option must be a map, got {other}"
            )));
        }
    };
    let mut opts = Options::default();
    for (k, v) in entries {
        let Value::String(k) = k else { continue };
        match k.as_bytes() {
            b"chunk" => match v {
                Value::String(s) => opts.chunk = Some(s.into_bytes()),
                Value::Binary(_) => {
                    return Err(DecodeError::new(
                        "chunk option sent as bin (Fluent Bit drops the request and closes the connection; send it as str)",
                    ));
                }
                other => {
                    return Err(DecodeError::new(format!(
                        "chunk option must be a str, got {other}"
                    )));
                }
            },
            b"compressed" => {
                if let Value::String(s) = &v {
                    opts.gzip = s.as_bytes() == b"gzip";
                }
            }
            b"size" if !v.is_u64() => {
                return Err(DecodeError::new(format!(
                    "size option must be an unsigned integer, got {v}"
                )));
            }
            _ => {}
        }
    }
    Ok(opts)
}

/// Decodes one complete top-level object of the transport phase.
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<Frame> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    if c.peek()? == 0xc0 {
        return Ok(Frame::Nil);
    }
    let n = c.array_len("request")?;
    let mut entry_ends = Vec::new();
    let tag = match c.raw()? {
        Some((true, t)) => {
            String::from_utf8(t.to_vec()).map_err(|_| DecodeError::new("tag is not valid UTF-8"))?
        }
        _ => return Err(DecodeError::new("tag must be a str")),
    };
    let second = c.peek()?;
    let (mode, entries, opts) = match second {
        // integer or ext → Message: [tag, time, record, option?]
        0x00..=0x7f | 0xcc..=0xcf | 0xd0..=0xd3 | 0xe0..=0xff | 0xc7 | 0xd7 => {
            if !(3..=4).contains(&n) {
                return Err(DecodeError::new(format!(
                    "Message mode needs 3 or 4 elements, got {n}"
                )));
            }
            let entry = (c.time()?, record(c.value()?)?);
            let opts = if n == 4 {
                options(c.value()?)?
            } else {
                Options::default()
            };
            (Mode::Message, vec![entry], opts)
        }
        // array → Forward: [tag, [[time, record], ...], option?]
        0x90..=0x9f | 0xdc | 0xdd => {
            if !(2..=3).contains(&n) {
                return Err(DecodeError::new(format!(
                    "Forward mode needs 2 or 3 elements, got {n}"
                )));
            }
            let count = c.array_len("entries")?;
            let mut entries = Vec::with_capacity(count.min(4096) as usize);
            for _ in 0..count {
                entries.push(c.entry()?);
            }
            let opts = if n == 3 {
                options(c.value()?)?
            } else {
                Options::default()
            };
            (Mode::Forward, entries, opts)
        }
        // bin or str → (Compressed)PackedForward: [tag, blob, option?]
        0xa0..=0xbf | 0xd9..=0xdb | 0xc4..=0xc6 => {
            if !(2..=3).contains(&n) {
                return Err(DecodeError::new(format!(
                    "PackedForward mode needs 2 or 3 elements, got {n}"
                )));
            }
            let blob = match c.raw()? {
                Some((_, b)) => b,
                None => return Err(DecodeError::new("blob must be bin or str")),
            };
            let opts = if n == 3 {
                options(c.value()?)?
            } else {
                Options::default()
            };
            let (mode, plain) = if opts.gzip {
                let mut out = Vec::new();
                MultiGzDecoder::new(blob)
                    .read_to_end(&mut out)
                    .map_err(|e| DecodeError::new(format!("gzip blob: {e}")))?;
                (Mode::CompressedPackedForward, out)
            } else {
                (Mode::PackedForward, blob.to_vec())
            };
            let mut inner = Cursor {
                buf: &plain,
                pos: 0,
            };
            let mut entries = Vec::new();
            while !inner.at_end() {
                entries.push(inner.entry()?);
                entry_ends.push(inner.pos);
            }
            (mode, entries, opts)
        }
        m => {
            return Err(DecodeError::new(format!(
                "2nd element must be time, array, bin or str; got marker 0x{m:02x}"
            )));
        }
    };
    if !c.at_end() {
        return Err(DecodeError::new("trailing bytes inside the request"));
    }
    Ok(Frame::Request(Request {
        tag,
        mode,
        entries,
        chunk: opts.chunk,
        entry_ends,
    }))
}

/// Appends a msgpack str header for `len` bytes (smallest form).
pub(crate) fn str_header(out: &mut Vec<u8>, len: usize) {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len < 256 {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len < 65536 {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a msgpack str holding `bytes` as they are (may be non-UTF-8, like Fluent Bit's HELO).
pub(crate) fn put_str(out: &mut Vec<u8>, bytes: &[u8]) {
    str_header(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// The ack reply `{"ack": <chunk>}`: fixmap of one entry, key `ack`, the chunk as str.
pub(crate) fn encode_ack(chunk: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81, 0xa3, b'a', b'c', b'k'];
    put_str(&mut out, chunk);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    fn rec() -> Value {
        Value::Map(vec![(Value::from("msg"), Value::from("hi"))])
    }

    #[test]
    fn framer_finds_each_value_and_waits_for_more() {
        let a = enc(&Value::Array(vec![Value::from("t"), Value::from(1), rec()]));
        let mut buf = a.clone();
        buf.push(0xc0);
        let mut f = Framer::default();
        assert_eq!(f.scan(&buf[..3]).unwrap(), None);
        assert_eq!(f.scan(&buf[..a.len() - 1]).unwrap(), None);
        assert_eq!(f.scan(&buf).unwrap(), Some(a.len()));
        f.reset();
        assert_eq!(f.scan(&buf[a.len()..]).unwrap(), Some(1));
        f.reset();
        assert!(f.scan(&[0xc1]).is_err());
        // byte by byte
        let mut f = Framer::default();
        for i in 1..a.len() {
            assert_eq!(f.scan(&a[..i]).unwrap(), None, "at {i}");
        }
        assert_eq!(f.scan(&a).unwrap(), Some(a.len()));
    }

    #[test]
    fn framer_handles_empty_containers_and_nested_maps() {
        let v = Value::Array(vec![
            Value::Array(vec![]),
            Value::Map(vec![(Value::from("a"), Value::Map(vec![]))]),
            Value::Ext(0, vec![0; 8]),
        ]);
        let b = enc(&v);
        assert_eq!(Framer::default().scan(&b).unwrap(), Some(b.len()));
    }

    #[test]
    fn both_event_time_encodings_and_integer() {
        let mut fix = vec![0x93, 0xa1, b't', 0xd7, 0x00];
        fix.extend_from_slice(&[0x65, 0x00, 0x00, 0x01, 0x07, 0x5b, 0xcd, 0x15]);
        fix.extend(enc(&rec()));
        let Frame::Request(r) = decode_frame(&fix).unwrap() else {
            panic!()
        };
        assert_eq!(r.mode, Mode::Message);
        assert_eq!(r.entries[0].0.secs, 0x6500_0001);
        assert_eq!(r.entries[0].0.nanos, 123_456_789);
        assert_eq!(r.entries[0].0.encoding, TimeEncoding::FixExt8);

        let mut ext = vec![0x93, 0xa1, b't', 0xc7, 0x08, 0x00];
        ext.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 6]);
        ext.extend(enc(&rec()));
        let Frame::Request(r) = decode_frame(&ext).unwrap() else {
            panic!()
        };
        assert_eq!((r.entries[0].0.secs, r.entries[0].0.nanos), (5, 6));
        assert_eq!(r.entries[0].0.encoding, TimeEncoding::Ext8);

        let int = enc(&Value::Array(vec![
            Value::from("t"),
            Value::from(1_700_000_000u64),
            rec(),
        ]));
        let Frame::Request(r) = decode_frame(&int).unwrap() else {
            panic!()
        };
        assert_eq!(r.entries[0].0.encoding, TimeEncoding::Integer);
        assert_eq!(r.entries[0].0.secs, 1_700_000_000);
    }

    #[test]
    fn rejects_bad_time_and_records() {
        let wrong_type = [&[0x93, 0xa1, b't', 0xd7, 0x05][..], &[0; 8], &enc(&rec())].concat();
        assert!(decode_frame(&wrong_type).is_err());
        let float = enc(&Value::Array(vec![
            Value::from("t"),
            Value::from(1.5),
            rec(),
        ]));
        assert!(decode_frame(&float).is_err());
        let not_map = enc(&Value::Array(vec![
            Value::from("t"),
            Value::from(1),
            Value::from(3),
        ]));
        assert!(decode_frame(&not_map).is_err());
        let int_key = enc(&Value::Array(vec![
            Value::from("t"),
            Value::from(1),
            Value::Map(vec![(Value::from(1), Value::from(2))]),
        ]));
        assert!(decode_frame(&int_key).is_err());
    }

    #[test]
    fn modes_by_second_element_type() {
        let entry = Value::Array(vec![Value::from(1), rec()]);
        let fwd = enc(&Value::Array(vec![
            Value::from("t"),
            Value::Array(vec![entry.clone(), entry.clone()]),
        ]));
        let Frame::Request(r) = decode_frame(&fwd).unwrap() else {
            panic!()
        };
        assert_eq!((r.mode, r.entries.len()), (Mode::Forward, 2));

        let blob = [enc(&entry), enc(&entry), enc(&entry)].concat();
        let packed_bin = enc(&Value::Array(vec![
            Value::from("t"),
            Value::Binary(blob.clone()),
        ]));
        let Frame::Request(r) = decode_frame(&packed_bin).unwrap() else {
            panic!()
        };
        assert_eq!((r.mode, r.entries.len()), (Mode::PackedForward, 3));

        let mut packed_str = vec![0x92, 0xa1, b't'];
        put_str(&mut packed_str, &blob);
        let Frame::Request(r) = decode_frame(&packed_str).unwrap() else {
            panic!()
        };
        assert_eq!((r.mode, r.entries.len()), (Mode::PackedForward, 3));
    }

    #[test]
    fn chunk_as_bin_is_an_error_and_str_is_kept_raw() {
        let opt = |c: Value| {
            enc(&Value::Array(vec![
                Value::from("t"),
                Value::from(1),
                rec(),
                Value::Map(vec![(Value::from("chunk"), c)]),
            ]))
        };
        assert!(decode_frame(&opt(Value::Binary(b"abc".to_vec()))).is_err());
        let Frame::Request(r) = decode_frame(&opt(Value::from("abc\n"))).unwrap() else {
            panic!()
        };
        assert_eq!(r.chunk.as_deref(), Some(&b"abc\n"[..]));
    }

    #[test]
    fn ack_bytes() {
        assert_eq!(
            encode_ack(b"ab"),
            vec![0x81, 0xa3, b'a', b'c', b'k', 0xa2, b'a', b'b']
        );
        let long = vec![b'x'; 40];
        let a = encode_ack(&long);
        assert_eq!(&a[5..7], &[0xd9, 40]);
    }

    #[test]
    fn nil_is_keepalive() {
        assert_eq!(decode_frame(&[0xc0]).unwrap(), Frame::Nil);
    }
}
