//! Access control lists in Kafka's model: a *binding* lets (or forbids) a
//! principal, from a host, an operation on resources of one type whose
//! name is given literally (`*`: every one) or as a prefix. Deny wins over
//! allow; super users are allowed everything; when nothing matches, the
//! answer is no.
//!
//! - [`model`]: bindings and their parts, with Kafka's codes and names.
//! - [`caller`]: who makes a request.
//! - [`denials`]: the (rate-limited) audit of refused requests.
//! - [`filter`]: which bindings a describe or delete is about.
//! - [`proto`] (feature): bindings and filters as protocol messages
//!   (Kafka's numbers).
//! - [`authorizer`]: the index that answers "may P do O on R?" with a cost
//!   that does not grow with other principals' bindings.

pub mod authorizer;
pub mod caller;
pub mod denials;
pub mod filter;
pub mod model;
#[cfg(feature = "proto")]
pub mod proto;

pub use authorizer::Authorizer;
pub use caller::{ANONYMOUS, Caller};
pub use filter::{AclFilter, PatternFilter};
pub use model::{AclBinding, Operation, PatternType, Permission, ResourceType};
