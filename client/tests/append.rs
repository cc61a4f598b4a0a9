//! Conditional appends against a real broker: a batch is stored only where
//! the partition's log ends, and a refused one says where that is.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::Env;
use goulette_batch::Record;
use goulette_client::append::{Appended, append_at};

fn records(tag: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Bytes::from(format!("{tag}{i}")),
            headers: vec![],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_conditional_append_it_should_be_stored_once_only_where_the_log_ends() {
    let env = Env::start(1, &[]).await;
    env.create_topic("copy", 1, 1).await;
    env.wait_serving("copy").await;
    let cluster = env.cluster();
    assert_eq!(append_at(&cluster, "copy", 0, 0, &records("a", 3)).await.unwrap(), Appended::Stored);
    // The same batch again (a retry, or a killed writer's late copy): refused.
    assert_eq!(append_at(&cluster, "copy", 0, 0, &records("a", 3)).await.unwrap(), Appended::Mismatch { log_end: 3 });
    // Past the end: refused too, nothing stored, no gap made.
    assert_eq!(append_at(&cluster, "copy", 0, 9, &records("x", 1)).await.unwrap(), Appended::Mismatch { log_end: 3 });
    assert_eq!(append_at(&cluster, "copy", 0, 3, &records("b", 2)).await.unwrap(), Appended::Stored);
    let values: Vec<String> = common::consume_all(cluster, "copy", 5)
        .await
        .into_iter()
        .map(|r| (r.offset, String::from_utf8(r.value.to_vec()).unwrap()))
        .map(|(o, v)| format!("{o}:{v}"))
        .collect();
    assert_eq!(values, ["0:a0", "1:a1", "2:a2", "3:b0", "4:b1"]);
}
