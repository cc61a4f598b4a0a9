//! `goulette produce`: stdin lines to records.

use std::io::{BufRead, Write};
use std::sync::Arc;

use bytes::Bytes;
use goulette_proto::v1::Acks;

use goulette_client::cluster::Cluster;
use goulette_client::partitioner::Partitioner;
use goulette_client::producer::{Producer, ProducerConfig, ProducerRecord};

/// `produce` options.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub topic: String,
    pub key: Option<String>,
    pub partition: Option<u32>,
    pub acks: Acks,
    pub window: usize,
    pub message: Option<String>,
    pub print_offsets: bool,
    pub idempotent: bool,
}

/// `produce`: `--message`, or each line of stdin, batched and pipelined.
/// Succeeds only if every message was acknowledged.
pub async fn produce(cluster: Arc<Cluster>, options: ProduceOptions) -> anyhow::Result<bool> {
    let config = ProducerConfig {
        acks: options.acks,
        window: options.window.max(1),
        idempotent: options.idempotent,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(cluster, config, Partitioner::KeyHash));
    let (results_tx, mut results_rx) = tokio::sync::mpsc::channel(65536);
    // Print outcomes in send order while more lines are read.
    let print_offsets = options.print_offsets;
    let printer = tokio::spawn(async move {
        let mut ok = true;
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
                    eprintln!("error: {e}");
                    ok = false;
                }
            }
        }
        let _ = out.flush();
        ok
    });
    let record = |value: String| ProducerRecord {
        topic: options.topic.clone(),
        partition: options.partition,
        key: options.key.clone().map(Bytes::from),
        value: Bytes::from(value),
        ..ProducerRecord::default()
    };
    let mut sent_ok = true;
    let send = |value: String| {
        let producer = producer.clone();
        let results_tx = results_tx.clone();
        let rec = record(value);
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
    match &options.message {
        Some(m) => sent_ok &= send(m.clone()).await,
        None => {
            let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<String>(8192);
            // stdin is blocking: read it on its own thread.
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                    if lines_tx.blocking_send(line).is_err() {
                        return;
                    }
                }
            });
            while let Some(line) = lines_rx.recv().await {
                if !send(line).await {
                    sent_ok = false;
                    break;
                }
            }
        }
    }
    drop(results_tx);
    let printed_ok = printer.await.unwrap_or(false);
    if let Ok(producer) = Arc::try_unwrap(producer) {
        producer.close().await;
    }
    Ok(sent_ok && printed_ok)
}
