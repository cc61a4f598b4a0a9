//! How `goulette consume` writes a record: its value alone, a JSON object,
//! or a format string in the manner of kcat's `-f`.
//!
//! Format string tokens: `%t` topic, `%p` partition, `%o` offset, `%T`
//! timestamp (ms), `%k` key, `%v` value, `%h` headers (`name=value`,
//! comma-separated), `%K`/`%S` key/value size in bytes, `%%` a percent
//! sign; `\n`, `\t` and `\\` are escapes. Keys, values and header values
//! are written as they are, or in hex or base64 with `--encoding` (for
//! binary data on a terminal). In JSON, each of them is a string when it
//! is UTF-8, and otherwise base64, named in `"encoded"` (e.g.
//! `"encoded": ["value", "header:trace"]`), so no byte is ever lost or
//! replaced.

use std::io::Write;

use bytes::Bytes;

use super::format_tokens::{Part, tokenize};
use goulette_client::consumer::ConsumedRecord;

/// Output format of `consume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFormat {
    /// Each value on a line.
    Value,
    /// One JSON object per record.
    Json,
    /// A format string (see the module documentation).
    Template(Vec<Piece>),
}

/// A part of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
    KeySize,
    ValueSize,
}

/// How keys, values and header values are written by a format string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// As they are.
    Raw,
    /// Lowercase hex.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// Parses `--format`: `value`, `json`, or a format string with `%` tokens.
pub fn parse_record_format(s: &str) -> Result<RecordFormat, String> {
    match s {
        "value" => return Ok(RecordFormat::Value),
        "json" => return Ok(RecordFormat::Json),
        _ => {}
    }
    if !s.contains('%') {
        return Err(format!(
            "{s:?} is neither `value`, `json` nor a format string (tokens: %t %p %o %T %k %v %h %K %S %%)"
        ));
    }
    let token = |letter| {
        Some(match letter {
            't' => Piece::Topic,
            'p' => Piece::Partition,
            'o' => Piece::Offset,
            'T' => Piece::Timestamp,
            'k' => Piece::Key,
            'v' => Piece::Value,
            'h' => Piece::Headers,
            'K' => Piece::KeySize,
            'S' => Piece::ValueSize,
            _ => return None,
        })
    };
    let pieces = tokenize(s, token, "%t %p %o %T %k %v %h %K %S %%")?
        .into_iter()
        .map(|part| match part {
            Part::Text(text) => Piece::Text(text),
            Part::Token(piece) => piece,
        })
        .collect();
    Ok(RecordFormat::Template(pieces))
}

/// Writes one record (with its line end, for `value` and `json`).
pub fn write_record(
    out: &mut impl Write,
    format: &RecordFormat,
    encoding: Encoding,
    record: &ConsumedRecord,
) -> std::io::Result<()> {
    match format {
        RecordFormat::Value => {
            out.write_all(&encode(&record.value, encoding))?;
            out.write_all(b"\n")
        }
        RecordFormat::Json => writeln!(out, "{}", json(record)),
        RecordFormat::Template(pieces) => {
            for piece in pieces {
                match piece {
                    Piece::Text(t) => out.write_all(t)?,
                    Piece::Topic => out.write_all(record.topic.as_bytes())?,
                    Piece::Partition => write!(out, "{}", record.partition)?,
                    Piece::Offset => write!(out, "{}", record.offset)?,
                    Piece::Timestamp => write!(out, "{}", record.timestamp)?,
                    Piece::Key => out.write_all(&encode(record.key.as_deref().unwrap_or_default(), encoding))?,
                    Piece::Value => out.write_all(&encode(&record.value, encoding))?,
                    Piece::Headers => {
                        for (i, (name, value)) in record.headers.iter().enumerate() {
                            if i > 0 {
                                out.write_all(b",")?;
                            }
                            out.write_all(name.as_bytes())?;
                            out.write_all(b"=")?;
                            out.write_all(&encode(value, encoding))?;
                        }
                    }
                    Piece::KeySize => write!(out, "{}", record.key.as_ref().map_or(0, Bytes::len))?,
                    Piece::ValueSize => write!(out, "{}", record.value.len())?,
                }
            }
            Ok(())
        }
    }
}

/// The JSON object of a record: UTF-8 as strings, anything else base64.
fn json(record: &ConsumedRecord) -> serde_json::Value {
    let mut encoded = Vec::new();
    let mut field = |name: String, bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::String(text.to_owned()),
        Err(_) => {
            encoded.push(serde_json::Value::String(name));
            serde_json::Value::String(base64(bytes))
        }
    };
    let key = record.key.as_ref().map(|k| field("key".into(), k));
    // A tombstone's value is null, as Kafka's tools show it.
    let value = if record.tombstone { serde_json::Value::Null } else { field("value".into(), &record.value) };
    let headers: serde_json::Map<String, serde_json::Value> =
        record.headers.iter().map(|(k, v)| (k.clone(), field(format!("header:{k}"), v))).collect();
    let mut object = serde_json::json!({
        "topic": &*record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": key,
        "value": value,
        "headers": headers,
    });
    if !encoded.is_empty() {
        object["encoded"] = serde_json::Value::Array(encoded);
    }
    object
}

fn encode(bytes: &[u8], encoding: Encoding) -> std::borrow::Cow<'_, [u8]> {
    match encoding {
        Encoding::Raw => bytes.into(),
        Encoding::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes().into(),
        Encoding::Base64 => base64(bytes).into_bytes().into(),
    }
}

/// Standard base64 (RFC 4648) with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition: 2,
            offset: 41,
            timestamp: 1000,
            key: Some(Bytes::from_static(b"k1")),
            value: Bytes::from_static(b"v\xff"),
            headers: vec![("a".into(), Bytes::from_static(b"1")), ("b".into(), Bytes::from_static(b"\xfe"))],
            tombstone: false,
        }
    }

    fn render(format: &str, encoding: Encoding) -> Vec<u8> {
        let mut out = Vec::new();
        write_record(&mut out, &parse_record_format(format).unwrap(), encoding, &record()).unwrap();
        out
    }

    #[test]
    fn format_strings_render_every_token() {
        assert_eq!(
            render("%t/%p@%o %T %k=%v [%h] %K %S 100%%\\n", Encoding::Raw),
            b"t/2@41 1000 k1=v\xff [a=1,b=\xfe] 2 2 100%\n"
        );
        assert_eq!(render("%k %v %h", Encoding::Hex), b"6b31 76ff a=31,b=fe");
        assert_eq!(render("%v", Encoding::Base64), b"dv8=");
        assert!(parse_record_format("%x").is_err());
        assert!(parse_record_format("plain").is_err());
    }

    #[test]
    fn json_keeps_utf8_as_strings_and_the_rest_as_named_base64() {
        let j = json(&record());
        assert_eq!(j["key"], "k1");
        assert_eq!(j["value"], "dv8=");
        assert_eq!(j["headers"]["a"], "1");
        assert_eq!(j["headers"]["b"], "/g==");
        assert_eq!(j["encoded"], serde_json::json!(["value", "header:b"]));
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, coded) in cases {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }
}
