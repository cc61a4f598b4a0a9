//! Authentication on the broker: the users it learns from the sentinels,
//! and the guard every login on its listeners goes through.
//!
//! - [`users`]: the users and their SCRAM credentials, replaced whole on
//!   each update of the security stream.
//! - [`acls`]: the ACLs enforced, rebuilt from each update.
//! - [`watch`]: follows that stream, and tells the sentinel leader which
//!   update was applied (a user change is answered only once every live
//!   broker applied it).
//!
//! What a failed login costs is `goulette_auth::guard`'s [`LoginGuard`],
//! counted here in `goulette_broker_auth_failures`.

pub mod acls;
pub mod users;
pub mod watch;

use goulette_auth::Decoy;

pub use goulette_auth::guard::LoginGuard;
pub use users::Users;

/// What the listeners authenticate with.
#[derive(Debug)]
pub struct Security {
    pub users: Users,
    pub acls: acls::Acls,
    /// Answers logins of unknown users like those of known ones until the
    /// cluster's decoy arrives (`Users::decoy_or`).
    pub decoy: Decoy,
    pub guard: LoginGuard,
}
