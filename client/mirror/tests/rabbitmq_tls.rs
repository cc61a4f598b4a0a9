//! The RabbitMQ source over TLS (`amqps://`) against a real
//! `rabbitmq-server` that takes only TLS with client certificates: a CA the
//! mirror does not trust is refused and said so on `/ready`; once the
//! `tls-ca` file holds the right CA, the next connection (files are read at
//! each one) mirrors every message, in order.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;
mod rabbit;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Env;
use goulette_sentinel::testkit::{free_port, http_get};
use goulette_tls::testing::TestCa;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use process::Mirror;
use rabbit::RabbitProcess;

const MESSAGES: usize = 2000;

/// Publishes `m0`… persistent, with confirms, over TLS with a client
/// certificate.
async fn publish_tls(url: &str, tls: OwnedTLSConfig, queue: &str) {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = Connection::connect_with_config(url, properties, tls).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(queue, options, FieldTable::default()).await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut confirms = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let payload = format!("m{i}");
        let properties = BasicProperties::default().with_delivery_mode(2);
        confirms.push(
            channel
                .basic_publish("", queue, BasicPublishOptions::default(), payload.as_bytes(), properties)
                .await
                .unwrap(),
        );
    }
    for c in confirms {
        c.await.unwrap();
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_amqps_queue_the_mirror_should_check_the_server_and_mirror_everything_once_it_trusts_it() {
    let env = Env::start(1, &[]).await;
    env.create_topic("secure-orders", 1, 1).await;
    let work = tempfile::tempdir().unwrap();
    let (ca, stranger) = (TestCa::new("rabbit test CA"), TestCa::new("another CA"));
    let server = ca.issue(&["127.0.0.1"]);
    let client = ca.issue(&["goulette-mirror"]);
    let ca_file = write(work.path(), "ca.pem", ca.pem());
    let rabbit = RabbitProcess::start_tls(
        &ca_file,
        &write(work.path(), "server.pem", &server.cert),
        &write(work.path(), "server.key", &server.key),
    );
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", rabbit.port);
    let identity =
        || OwnedIdentity::PKCS8 { pem: client.cert.clone().into_bytes(), key: client.key.clone().into_bytes() };
    publish_tls(&url, OwnedTLSConfig { identity: Some(identity()), cert_chain: Some(ca.pem().to_owned()) }, "orders")
        .await;

    // The mirror first trusts another CA only.
    let trusted = write(work.path(), "trusted.pem", stranger.pem());
    let (cert, key) = (write(work.path(), "client.pem", &client.cert), write(work.path(), "client.key", &client.key));
    let http = free_port();
    let text = format!(
        "[target]\nsentinels = [\"{}\"]\n\n[http]\naddress = \"127.0.0.1:{http}\"\n\n\
         [[source]]\nname = \"secure\"\nkind = \"rabbitmq\"\nurl = \"{url}\"\nqueue = \"orders\"\n\
         topic = \"secure-orders\"\ntls-ca = \"{}\"\ntls-cert = \"{}\"\ntls-key = \"{}\"\n",
        env.sentinel.address,
        trusted.display(),
        cert.display(),
        key.display()
    );
    std::fs::write(work.path().join("mirror.toml"), text).unwrap();
    let mut mirror = Mirror::start(&work.path().join("mirror.toml"), &work.path().join("mirror.log"));
    let log = || std::fs::read_to_string(work.path().join("mirror.log")).unwrap_or_default();
    let address = format!("127.0.0.1:{http}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((503, why)) = http_get(address, "/ready")
            && why.to_ascii_lowercase().contains("certificate")
        {
            break;
        }
        assert!(Instant::now() < deadline, "/ready does not say the certificate is refused: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = |page: &str| common::metric(page, "goulette_mirror_records_out_total{source=\"secure\"}").unwrap_or(0.0);
    assert_eq!(
        http_get(address, "/metrics").map(|(_, page)| out(&page)),
        Some(0.0),
        "nothing from an untrusted server"
    );

    // The right CA in the file: the next connection uses it.
    std::fs::write(&trusted, ca.pem()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while http_get(address, "/metrics").is_none_or(|(_, page)| out(&page) < MESSAGES as f64) {
        assert!(Instant::now() < deadline, "not mirrored once the CA was trusted: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(address, "/ready").map(|(code, _)| code), Some(200));
    let records = common::consume_all(env.cluster(), "secure-orders", MESSAGES).await;
    let values: Vec<String> = records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("m{i}")).collect();
    assert_eq!(values, expected, "every message once, in the queue's order");
    assert!(mirror.terminate().is_some_and(|s| s.success()));
    assert!(!log().contains("guest:guest"), "the password is not logged");
}
