//! The follower side of replication: copying a partition from its leader.
//!
//! A follower first asks the leader where its own latest leader epoch ends
//! (`OffsetForLeaderEpoch`) and truncates whatever lies beyond — a suffix
//! written under a leadership the new leader does not share — then opens a
//! fetch stream marked with its broker id. The leader serves it up to its log
//! end; the follower appends each batch as it is (offsets and epochs kept,
//! durable under its flush policy) and reports its new log end with each
//! credit grant. The leader's high watermark is the lowest log end over the
//! ISR, and `acks=all` waits for it.
//!
//! A follower task needs the replica and where its leader is (the
//! [`Peers`] address book), nothing of the registry that starts it.

use std::sync::Arc;
use std::time::Duration;

use goulette_proto::v1::{self as pb, ErrorCode, broker_service_client::BrokerServiceClient, fetch_request::Kind};
use goulette_storage::batch::MAX_BATCH_LEN;
use goulette_storage::{Batch, PendingAppend};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::peers::Peers;
use crate::replica::Replica;

/// Bytes a follower lets the leader send ahead of its appends.
const FOLLOWER_CREDIT: u64 = 16 << 20;

/// Replicates `replica` from whoever leads it, until `token` is cancelled.
pub async fn follow(peers: Arc<Peers>, replica: Arc<Replica>, token: CancellationToken) {
    let me = replica.broker_id;
    let mut changes = replica.watch_high_watermark();
    let mut attempt: u32 = 0;
    while !token.is_cancelled() {
        let state = replica.state();
        let leader = match state.leader {
            Some(l) if l != me => l,
            Some(_) => return, // this broker leads now
            None => {
                tokio::select! {
                    _ = changes.changed() => continue,
                    _ = token.cancelled() => return,
                }
            }
        };
        let Some(address) = peers.address(leader) else {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                _ = token.cancelled() => return,
            }
        };
        let mut connected = false;
        let session = match peers.channel(&address) {
            Ok(channel) => replicate(&replica, me, channel, state.leader_epoch, &token, &mut connected).await,
            Err(e) => Err(e),
        };
        match session {
            Ok(()) => attempt = 0,
            Err(e) => {
                // The backoff grows only over failures in a row: a stream
                // that worked (then broke, e.g. its leader died) starts it
                // over, and a new leader is tried at once.
                attempt = if connected { 0 } else { attempt + 1 };
                tracing::debug!(topic = %replica.topic, partition = replica.partition, leader, error = %e, "replication interrupted");
                if replica.state().leader_epoch != state.leader_epoch {
                    continue;
                }
                let pause = Duration::from_millis(50 * u64::from(attempt.clamp(1, 20)));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = token.cancelled() => return,
                }
            }
        }
    }
}

/// One replication session with the leader over `channel`: truncate, then
/// fetch until the stream breaks, the leadership changes, or `token` ends.
async fn replicate(
    replica: &Arc<Replica>,
    me: u32,
    channel: Channel,
    epoch: u64,
    token: &CancellationToken,
    connected: &mut bool,
) -> anyhow::Result<()> {
    let max = MAX_BATCH_LEN + (1 << 20);
    let mut client = BrokerServiceClient::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
    truncate_divergence(replica, &mut client).await?;

    let (requests, rx) = mpsc::channel(16);
    let start = pb::FetchStart {
        topic: replica.topic.clone(),
        partition: replica.partition,
        offset: replica.log.log_end_offset(),
        max_bytes: 1 << 20,
        credit_bytes: FOLLOWER_CREDIT,
        replica_id: Some(me),
        leader_epoch: Some(epoch),
        tag_filter: None,
    };
    requests.send(pb::FetchRequest { kind: Some(Kind::Start(start)) }).await?;
    let mut responses = client.fetch(ReceiverStream::new(rx)).await?.into_inner();
    let mut changes = replica.watch_high_watermark();
    loop {
        let response = tokio::select! {
            r = responses.message() => r?,
            _ = token.cancelled() => return Ok(()),
            _ = changes.changed() => {
                // A new leader or epoch: start over (and truncate again).
                let state = replica.state();
                if state.leader_epoch != epoch || state.leader == Some(me) {
                    return Ok(());
                }
                continue;
            }
        };
        let Some(response) = response else { anyhow::bail!("the leader ended the stream") };
        // Only a stream that delivered something counts as a working session.
        if response.error.is_none() {
            *connected = true;
        }
        if let Some(e) = &response.error {
            if e.error_code() == ErrorCode::OffsetOutOfRange && response.log_start_offset > replica.log.log_end_offset()
            {
                // Retention on the leader passed our end: start over, empty,
                // at its log start.
                let emptied = replica.clone();
                let start = response.log_start_offset;
                tracing::warn!(topic = %replica.topic, partition = replica.partition, start, "the leader's log starts after ours ends; emptying ours");
                tokio::task::spawn_blocking(move || {
                    emptied.log.reset_to(start)?;
                    emptied.timers.reset(start)
                })
                .await??;
                replica.appended();
            }
            anyhow::bail!("leader answered {:?}: {}", e.error_code(), e.message);
        }
        let (follower, token) = (replica.clone(), token.clone());
        let batches = response.batches;
        let appended = tokio::task::spawn_blocking(move || append_response(&follower, batches, epoch, me, &token));
        let (bytes, last) = appended.await??;
        // Durable before it is reported (one group-commit round for the
        // response, shared with the produce path's waiters).
        if let Some(pending) = last {
            crate::group_commit::wait_durable(&replica.log, &pending).await?;
        }
        let Some(bytes) = bytes else { return Ok(()) };
        replica.appended();
        replica.follow_high_watermark(response.high_watermark);
        if response.log_start_offset > replica.log.log_start_offset() {
            follow_log_start(replica, response.log_start_offset).await?;
        }
        let credit = pb::FetchCredit { bytes, replica_log_end: Some(replica.log.log_end_offset()) };
        requests.send(pb::FetchRequest { kind: Some(Kind::Credit(credit)) }).await?;
    }
}

/// Moves this replica's log start up to the leader's (records deleted on
/// request, or by the leader's retention), never past its own end: a
/// replica that becomes leader must not serve records the leader had
/// stopped serving.
async fn follow_log_start(replica: &Arc<Replica>, leader_start: u64) -> anyhow::Result<()> {
    let log = replica.log.clone();
    let start = tokio::task::spawn_blocking(move || {
        let end = log.log_end_offset();
        log.delete_records_before(leader_start.min(end))
    })
    .await??;
    tracing::debug!(topic = %replica.topic, partition = replica.partition, start, "log start follows the leader's");
    Ok(())
}

/// Appends the batches of one fetch response (on a blocking thread).
/// Returns their bytes, or `None` when it stopped because this broker was
/// made leader or the term ended: nothing from the old term may be appended
/// after that; and the last append, for the caller to wait for once (one
/// fdatasync for the response, not one per batch).
fn append_response(
    replica: &Replica,
    batches: Vec<bytes::Bytes>,
    epoch: u64,
    me: u32,
    token: &CancellationToken,
) -> anyhow::Result<(Option<u64>, Option<PendingAppend>)> {
    let mut bytes = 0u64;
    let mut last = None;
    let mut stopped = false;
    for raw in batches {
        let state = replica.state();
        if token.is_cancelled() || state.leader_epoch != epoch || state.leader == Some(me) {
            stopped = true;
            break;
        }
        bytes += raw.len() as u64;
        let batch = Batch::parse_sparse(raw)?;
        if batch.next_offset() <= replica.log.log_end_offset() {
            continue; // already held (a resent batch)
        }
        last = Some(replica.log.append_replicated_deferred(&batch)?);
    }
    Ok((if stopped { None } else { Some(bytes) }, last))
}

/// Truncates the suffix this replica holds beyond where its latest epoch
/// ends on the leader.
async fn truncate_divergence(replica: &Arc<Replica>, client: &mut BrokerServiceClient<Channel>) -> anyhow::Result<()> {
    let Some(&(latest, _)) = replica.log.epoch_history().last() else { return Ok(()) };
    let req = pb::OffsetForLeaderEpochRequest {
        topic: replica.topic.clone(),
        partition: replica.partition,
        leader_epoch: latest,
    };
    let answer = client.offset_for_leader_epoch(req).await?.into_inner();
    if let Some(e) = answer.error {
        anyhow::bail!("leader answered {:?}: {}", e.error_code(), e.message);
    }
    let ours = replica.log.log_end_offset();
    let end = match (answer.leader_epoch, answer.end_offset) {
        // The leader never had our latest epoch: the logs agree at most up to
        // where the epoch it names ends in both of them.
        (Some(epoch), Some(end)) if epoch < latest => {
            end.min(replica.log.end_offset_for_epoch(epoch).map_or(0, |(_, own_end)| own_end))
        }
        (_, Some(end)) => end,
        // An epoch older than the leader's whole history: keep only what the
        // cluster committed.
        _ => replica.high_watermark(),
    };
    if end < ours {
        tracing::warn!(
            topic = %replica.topic,
            partition = replica.partition,
            from = end,
            dropped = ours - end,
            "truncating a suffix the leader does not have"
        );
        // The timer index forgets what it read from the cut suffix before
        // anything is appended after it.
        let cut = replica.clone();
        tokio::task::spawn_blocking(move || {
            // A batch is never split: the log may end below `end`.
            let end = cut.log.truncate_to(end)?;
            cut.timers.truncated(end)
        })
        .await??;
        replica.appended();
    }
    Ok(())
}
