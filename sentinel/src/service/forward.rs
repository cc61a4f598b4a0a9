//! Where a leader-only request runs: here, when this sentinel leads, or on
//! the leader, by sending the same RPC to the address it published, with
//! the `goulette-forwarded` key set. A forwarded request reaching a
//! sentinel that does not lead fails with `NO_LEADER` rather than bouncing
//! further (two sentinels with different views could otherwise forward to
//! each other forever).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goulette_proto::FORWARDED_HEADER;
use goulette_proto::channel::ChannelOptions;
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::election::Role;
use crate::error::{Result, SentinelError};
use crate::store::Fence;
use crate::view::ClusterView;

/// Where a write runs.
pub(super) enum Route {
    /// Here, under this leader's fence.
    Local(Fence),
    /// On the leader, over this channel.
    Forward(Channel),
}

/// Whether `req` was forwarded by another sentinel.
pub(super) fn forwarded<T>(req: &Request<T>) -> bool {
    req.metadata().contains_key(FORWARDED_HEADER)
}

/// `inner` as a request to the leader, marked forwarded.
pub(super) fn forward_request<T>(inner: T) -> Request<T> {
    let mut req = Request::new(inner);
    req.metadata_mut().insert(FORWARDED_HEADER, tonic::metadata::MetadataValue::from_static("1"));
    req
}

/// The leader's failure to answer a forwarded request.
pub(super) fn status_to_error(leader: &str, status: Status) -> SentinelError {
    SentinelError::Forward { leader: leader.to_owned(), reason: status.message().to_owned() }
}

/// Routes leader-only requests, keeping one lazily connected channel per
/// leader address.
pub(super) struct Forwarder {
    /// This sentinel's own gRPC address: a view naming it leader while the
    /// role says otherwise (just deposed) is no reason to call ourselves.
    address: String,
    views: watch::Receiver<Arc<ClusterView>>,
    role: watch::Receiver<Role>,
    peers: Mutex<HashMap<String, Channel>>,
}

impl Forwarder {
    pub(super) fn new(
        address: String,
        views: watch::Receiver<Arc<ClusterView>>,
        role: watch::Receiver<Role>,
    ) -> Forwarder {
        Forwarder { address, views, role, peers: Mutex::new(HashMap::new()) }
    }

    fn channel(&self, address: &str) -> Result<Channel> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = peers.get(address) {
            return Ok(c.clone());
        }
        // Unary calls only: bounded each, no pings needed.
        let options = ChannelOptions::INTERNAL.with_request_timeout(Duration::from_secs(10)).without_keep_alive();
        let channel = goulette_proto::channel::lazy(address, options)
            .map_err(|e| SentinelError::Forward { leader: address.to_owned(), reason: e.to_string() })?;
        peers.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Where a leader-only request runs now (`already_forwarded`: it came
    /// from another sentinel, and is never sent on again).
    pub(super) fn route(&self, already_forwarded: bool) -> Result<Route> {
        if let Role::Leader(fence) = &*self.role.borrow() {
            return Ok(Route::Local(fence.clone()));
        }
        let view = self.views.borrow().clone();
        let leader = view.leader_address().map(str::to_owned);
        match leader {
            _ if already_forwarded => Err(SentinelError::NotLeader { leader }),
            Some(l) if l != self.address => Ok(Route::Forward(self.channel(&l)?)),
            _ => Err(SentinelError::NoLeader),
        }
    }

    /// The leader's address as this sentinel's view has it ("" when none).
    pub(super) fn leader_address(&self) -> String {
        self.views.borrow().leader_address().unwrap_or_default().to_owned()
    }

    /// Serves a request only the sentinel leader can: with `local` when
    /// this sentinel leads, else by sending it on with `forward` (once: a
    /// forwarded request is never forwarded again).
    pub(super) async fn on_leader<Req, Resp, LocalFut, ForwardFut>(
        &self,
        req: Request<Req>,
        local: impl FnOnce(Fence, Req) -> LocalFut,
        forward: impl FnOnce(Channel, Request<Req>) -> ForwardFut,
    ) -> Result<Resp>
    where
        LocalFut: Future<Output = Result<Resp>>,
        ForwardFut: Future<Output = std::result::Result<Response<Resp>, Status>>,
    {
        let already_forwarded = forwarded(&req);
        let req = req.into_inner();
        match self.route(already_forwarded)? {
            Route::Local(fence) => local(fence, req).await,
            Route::Forward(channel) => {
                let leader = self.leader_address();
                forward(channel, forward_request(req))
                    .await
                    .map(Response::into_inner)
                    .map_err(|st| status_to_error(&leader, st))
            }
        }
    }
}
