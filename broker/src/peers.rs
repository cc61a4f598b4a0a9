//! The address book: where the other brokers serve, as the sentinels last
//! said. Follower tasks read it to find their leader, and share one channel
//! (one HTTP/2 connection) per leader from it; "not leader" answers name the
//! leader's address from it.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use goulette_proto::channel::{ChannelOptions, lazy};
use goulette_proto::v1 as pb;
use tonic::transport::Channel;

/// Every known broker's client address, by id, and the channels to them.
#[derive(Debug, Default)]
pub struct Peers {
    addresses: RwLock<HashMap<u32, String>>,
    /// By address: every follower of a leader on this broker fetches over
    /// one connection, its partitions as streams of it. A connection per
    /// followed partition made 10,000 partitions 13,000 sockets per broker,
    /// each with its own HTTP/2 state and buffers.
    channels: Mutex<HashMap<String, Channel>>,
}

impl Peers {
    /// Replaces the book with the brokers of an assignment update.
    pub fn replace(&self, brokers: &[pb::BrokerInfo]) {
        let mut addresses = self.addresses.write().unwrap_or_else(|p| p.into_inner());
        addresses.clear();
        addresses.extend(brokers.iter().filter(|b| !b.address.is_empty()).map(|b| (b.id, b.address.clone())));
        // A broker that moved or left: its connection goes with its last user.
        let known: Vec<&String> = addresses.values().collect();
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).retain(|address, _| known.contains(&address));
    }

    /// The channel to the broker at `address` (created on first use, it
    /// connects lazily and reconnects by itself).
    pub fn channel(&self, address: &str) -> anyhow::Result<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let channel = lazy(address, ChannelOptions::INTERNAL)?;
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// The address of broker `id`, if known.
    pub fn address(&self, id: u32) -> Option<String> {
        self.addresses.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }
}
