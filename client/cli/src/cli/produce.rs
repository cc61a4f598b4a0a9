//! `goulette produce`: stdin lines (optionally `key<SEP>value`), whole
//! files, or one `--message` to records, byte for byte, with headers.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use goulette_proto::v1::Acks;

use goulette_client::cluster::Cluster;

use super::input_format::{InputFormat, ParsedLine};
use goulette_client::partitioner::Partitioner;
use goulette_client::producer::{Producer, ProducerConfig, ProducerRecord};

/// `produce` options.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub topic: String,
    /// The key of every message (unless the input gives one).
    pub key: Option<String>,
    /// Headers of every message.
    pub headers: Vec<(String, Bytes)>,
    pub partition: Option<u32>,
    pub acks: Acks,
    pub compression: goulette_client::Compression,
    pub window: usize,
    pub input: ProduceInput,
    pub print_offsets: bool,
    pub idempotent: bool,
}

/// Where the messages come from.
#[derive(Debug, Clone)]
pub enum ProduceInput {
    /// One message.
    Message(String),
    /// Each file's content is one message.
    Files(Vec<PathBuf>),
    /// One tombstone (a null value: on a compacted topic, deletes the key)
    /// per key.
    Tombstones(Vec<String>),
    /// Each stdin line is one message; with a separator, the bytes before
    /// its first occurrence are the key; with a format, the line splits as
    /// it says.
    Stdin { key_separator: Option<Vec<u8>>, format: Option<InputFormat> },
}

/// Splits `line` at the first `separator` into key and value; a line
/// without it is a value without key.
fn split_key(line: Bytes, separator: &[u8]) -> (Option<Bytes>, Bytes) {
    match line.windows(separator.len()).position(|w| w == separator) {
        Some(at) if !separator.is_empty() => (Some(line.slice(..at)), line.slice(at + separator.len()..)),
        _ => (None, line),
    }
}

/// `produce`: `--message`, or each line of stdin (any bytes, the newline
/// removed), batched and pipelined. Succeeds only if every message was
/// acknowledged; otherwise says how many were not.
pub async fn produce(cluster: Arc<Cluster>, options: ProduceOptions) -> anyhow::Result<bool> {
    let config = ProducerConfig {
        acks: options.acks,
        window: options.window.max(1),
        idempotent: options.idempotent,
        compression: options.compression,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(cluster, config, Partitioner::KeyHash));
    let (results_tx, mut results_rx) = tokio::sync::mpsc::channel(65536);
    // Print outcomes in send order while more lines are read.
    let print_offsets = options.print_offsets;
    let printer = tokio::spawn(async move {
        let mut failed = 0u64;
        let mut out = std::io::BufWriter::new(std::io::stdout());
        while let Some(delivery) = results_rx.recv().await {
            let delivery: goulette_client::producer::Delivery = delivery;
            match delivery.wait().await {
                Ok(meta) if print_offsets => {
                    let offset = meta.offset.map_or_else(|| "-".to_owned(), |o| o.to_string());
                    let _ = writeln!(out, "{}\t{offset}", meta.partition);
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = out.flush();
                    if failed == 0 {
                        eprintln!("error: {e}");
                    }
                    failed += 1;
                }
            }
        }
        let _ = out.flush();
        failed
    });
    // What the input gives wins over the options' defaults for all records.
    let tombstones = matches!(options.input, ProduceInput::Tombstones(_));
    let record = |fields: ParsedLine| ProducerRecord {
        topic: options.topic.clone(),
        partition: fields.partition.or(options.partition),
        key: fields.key.or_else(|| options.key.clone().map(Bytes::from)),
        value: fields.value,
        headers: options.headers.iter().cloned().chain(fields.headers).collect(),
        tombstone: tombstones,
        ..ProducerRecord::default()
    };
    let mut sent = 0u64;
    let mut unsent = 0u64;
    let mut stdin_error = None;
    let send = |fields: ParsedLine| {
        let producer = producer.clone();
        let results_tx = results_tx.clone();
        let rec = record(fields);
        async move {
            match producer.send(rec).await {
                Ok(d) => results_tx.send(d).await.is_ok(),
                Err(e) => {
                    eprintln!("error: {e}");
                    false
                }
            }
        }
    };
    match &options.input {
        // One message, or one per file, read when its turn comes (so
        // memory holds one file at most).
        ProduceInput::Message(_) | ProduceInput::Files(_) => {
            let message = match &options.input {
                ProduceInput::Message(m) => Some(Bytes::from(m.clone())),
                _ => None,
            };
            let files: &[PathBuf] = match &options.input {
                ProduceInput::Files(files) => files,
                _ => &[],
            };
            let read = |file: &PathBuf| {
                std::fs::read(file)
                    .map(Bytes::from)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))
            };
            let values = message.into_iter().map(Ok).chain(files.iter().map(read));
            for value in values {
                match value {
                    Ok(value) if send(ParsedLine { value: value.clone(), ..ParsedLine::default() }).await => sent += 1,
                    Ok(_) => {
                        unsent += 1;
                        break;
                    }
                    Err(e) => {
                        stdin_error = Some(e);
                        break;
                    }
                }
            }
        }
        ProduceInput::Tombstones(keys) => {
            for key in keys {
                let fields = ParsedLine { key: Some(Bytes::from(key.clone())), ..ParsedLine::default() };
                if send(fields).await {
                    sent += 1;
                } else {
                    unsent += 1;
                    break;
                }
            }
        }
        ProduceInput::Stdin { key_separator, format } => {
            let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8192);
            // stdin is blocking: read it on its own thread.
            std::thread::spawn(move || {
                read_lines(std::io::stdin().lock(), |line| lines_tx.blocking_send(line).is_ok())
            });
            let mut number = 0u64;
            while let Some(line) = lines_rx.recv().await {
                number += 1;
                let line = match line {
                    Ok(line) => line,
                    Err(e) => {
                        stdin_error = Some(e);
                        break;
                    }
                };
                let fields = match (format, key_separator) {
                    (Some(format), _) => match format.parse(&line) {
                        Ok(fields) => fields,
                        Err(e) => {
                            // Not sent, so not acknowledged: counted, and the run fails.
                            eprintln!("error: line {number} does not match --input-format: {e}");
                            unsent += 1;
                            continue;
                        }
                    },
                    (None, Some(sep)) => {
                        let (key, value) = split_key(line, sep);
                        ParsedLine { key, value, ..ParsedLine::default() }
                    }
                    (None, None) => ParsedLine { value: line, ..ParsedLine::default() },
                };
                if send(fields).await {
                    sent += 1;
                } else {
                    // The producer is closed: nothing more can be sent.
                    unsent += 1;
                    break;
                }
            }
        }
    }
    drop(results_tx);
    let failed = printer.await.unwrap_or(sent);
    if let Ok(producer) = Arc::try_unwrap(producer) {
        producer.close().await;
    }
    let lost = failed + unsent;
    if lost > 0 {
        eprintln!("error: {lost} of {} messages were not acknowledged", sent + unsent);
    }
    if let Some(e) = &stdin_error {
        eprintln!("error: reading the input failed after {sent} messages: {e}");
    }
    Ok(lost == 0 && stdin_error.is_none())
}

/// Reads `input` line by line, as bytes (a value is whatever the line
/// holds, UTF-8 or not), without the `\n`; hands each to `line` until it
/// returns false. A read error is handed on and ends the reading.
fn read_lines(mut input: impl BufRead, mut line: impl FnMut(std::io::Result<Bytes>) -> bool) {
    loop {
        let mut buf = Vec::new();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if !line(Ok(Bytes::from(buf))) {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                line(Err(e));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        read_lines(input, |l| {
            out.push(l.unwrap().to_vec());
            true
        });
        out
    }

    #[test]
    fn every_line_is_read_byte_exact_whatever_it_holds() {
        assert_eq!(lines(b"one\ntw\xe9o\nthree\n"), vec![b"one".to_vec(), b"tw\xe9o".to_vec(), b"three".to_vec()]);
        assert_eq!(lines(b"no newline at the end"), vec![b"no newline at the end".to_vec()]);
        assert_eq!(lines(b"a\r\n\n\0b\n"), vec![b"a\r".to_vec(), Vec::new(), b"\0b".to_vec()]);
        assert!(lines(b"").is_empty());
    }

    #[test]
    fn a_key_separator_splits_at_its_first_occurrence_only() {
        let split = |line: &'static [u8], sep: &[u8]| {
            let (k, v) = split_key(Bytes::from_static(line), sep);
            (k.map(|k| k.to_vec()), v.to_vec())
        };
        assert_eq!(split(b"k1:v:1", b":"), (Some(b"k1".to_vec()), b"v:1".to_vec()));
        assert_eq!(split(b":v", b":"), (Some(Vec::new()), b"v".to_vec()));
        assert_eq!(split(b"no key", b":"), (None, b"no key".to_vec()));
        assert_eq!(split(b"a=>b", b"=>"), (Some(b"a".to_vec()), b"b".to_vec()));
    }
}
