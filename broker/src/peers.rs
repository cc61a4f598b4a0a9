//! The address book: where the other brokers serve, as the sentinels last
//! said. Follower tasks read it to find their leader; "not leader" answers
//! name the leader's address from it.

use std::collections::HashMap;
use std::sync::RwLock;

use goulette_proto::v1 as pb;

/// Every known broker's client address, by id.
#[derive(Debug, Default)]
pub struct Peers {
    addresses: RwLock<HashMap<u32, String>>,
}

impl Peers {
    /// Replaces the book with the brokers of an assignment update.
    pub fn replace(&self, brokers: &[pb::BrokerInfo]) {
        let mut addresses = self.addresses.write().unwrap_or_else(|p| p.into_inner());
        addresses.clear();
        addresses.extend(brokers.iter().filter(|b| !b.address.is_empty()).map(|b| (b.id, b.address.clone())));
    }

    /// The address of broker `id`, if known.
    pub fn address(&self, id: u32) -> Option<String> {
        self.addresses.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }
}
