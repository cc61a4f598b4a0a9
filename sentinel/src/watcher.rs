//! Keeps a [`ClusterView`] current: one read of the prefix at a revision,
//! then a watch from the next revision. On any watch failure (etcd down,
//! compaction) it reads the prefix again; it never writes.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::view::ClusterView;

/// Runs until `token` is cancelled, publishing every new view.
pub async fn run(store: Store, views: watch::Sender<Arc<ClusterView>>, token: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !token.is_cancelled() {
        let result = tokio::select! {
            r = follow(&store, &views) => r,
            _ = token.cancelled() => return,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cluster view: reloading from etcd");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = token.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn follow(store: &Store, views: &watch::Sender<Arc<ClusterView>>) -> anyhow::Result<()> {
    let mut view = store.load().await?;
    views.send_replace(Arc::new(view.clone()));
    let keys = store.keys().clone();
    let mut client = store.client();
    let options = WatchOptions::new().with_prefix().with_start_revision(view.revision + 1);
    let mut stream = client.watch(keys.root(), Some(options)).await?;
    loop {
        // A dead connection fails the stream (the client pings every 2 s).
        let Some(resp) = stream.message().await? else { anyhow::bail!("watch stream ended") };
        if resp.canceled() {
            anyhow::bail!("watch cancelled: {}", resp.cancel_reason());
        }
        if resp.events().is_empty() {
            continue;
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key());
            match event.event_type() {
                EventType::Put => view.put(&keys, &key, kv.value(), kv.create_revision(), kv.mod_revision())?,
                EventType::Delete => view.delete(&keys, &key),
            }
            // Only events advance the view's revision: a response's header
            // may be ahead of events still to come (a catching-up watch),
            // and compare-and-swap writes trust this revision.
            view.revision = view.revision.max(kv.mod_revision());
        }
        views.send_replace(Arc::new(view.clone()));
    }
}
