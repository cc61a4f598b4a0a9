//! ACL check latency: 10,000 bindings over 1,000 topics (and, for
//! comparison, 100 bindings), then a million checks of random principals,
//! operations and topics, each timed: p50, p99, p99.9 and max per check.
//! The target (issue 16): p99 ≤ 2 µs with 10,000 bindings.
//!
//! `cargo bench -p goulette-auth --bench acl` (`make bench-acl`).

use std::time::Instant;

use goulette_auth::acl::{AclBinding, Authorizer, Operation, PatternType, Permission, ResourceType};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOPICS: usize = 1_000;
const CHECKS: usize = 1_000_000;

/// `count` bindings for `principals` users over the topics: literal reads
/// and writes, prefixed writes, group reads, and some denies.
fn bindings(count: usize, principals: usize, rng: &mut StdRng) -> Vec<AclBinding> {
    (0..count)
        .map(|i| {
            let principal = format!("User:user-{:04}", i % principals);
            let topic = format!("team-{:02}.topic-{:04}", rng.random_range(0..20), rng.random_range(0..TOPICS));
            let (resource_type, pattern, name, operation, permission) = match rng.random_range(0..10) {
                0..6 => (ResourceType::Topic, PatternType::Literal, topic, Operation::Read, Permission::Allow),
                6 | 7 => {
                    let prefix = topic[..rng.random_range(5..12)].to_owned();
                    (ResourceType::Topic, PatternType::Prefixed, prefix, Operation::Write, Permission::Allow)
                }
                8 => (
                    ResourceType::Group,
                    PatternType::Literal,
                    format!("group-{i}"),
                    Operation::Read,
                    Permission::Allow,
                ),
                _ => (ResourceType::Topic, PatternType::Literal, topic, Operation::Write, Permission::Deny),
            };
            AclBinding { resource_type, name, pattern, principal, host: "*".into(), operation, permission }
        })
        .collect()
}

fn measure(label: &str, count: usize, principals: usize) {
    let mut rng = StdRng::seed_from_u64(16);
    let mut all = bindings(count, principals, &mut rng);
    // A few bindings for every user, as clusters have.
    all.push(AclBinding {
        resource_type: ResourceType::Topic,
        name: "public.".into(),
        pattern: PatternType::Prefixed,
        principal: "User:*".into(),
        host: "*".into(),
        operation: Operation::Read,
        permission: Permission::Allow,
    });
    let authorizer = Authorizer::new(&all, ["User:admin".to_owned()]);
    let asks: Vec<(String, Operation, String)> = (0..4096)
        .map(|_| {
            let principal = format!("User:user-{:04}", rng.random_range(0..principals));
            let op = [Operation::Read, Operation::Write, Operation::Describe][rng.random_range(0..3)];
            let topic = format!("team-{:02}.topic-{:04}", rng.random_range(0..20), rng.random_range(0..TOPICS));
            (principal, op, topic)
        })
        .collect();
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    let mut allowed = 0usize;
    for i in 0..CHECKS {
        let (principal, op, topic) = &asks[i % asks.len()];
        let start = Instant::now();
        let ok = authorizer.authorize(principal, None, *op, ResourceType::Topic, topic);
        let took = start.elapsed().as_nanos() as u64;
        allowed += usize::from(std::hint::black_box(ok));
        let _ = histogram.record(took.max(1));
    }
    println!(
        "{label}: {} bindings, {principals} principals, {CHECKS} checks ({:.1} % allowed): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        authorizer.len(),
        allowed as f64 * 100.0 / CHECKS as f64,
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    );
}

fn main() {
    // `cargo test --benches` runs this too: a short run then.
    if std::env::args().any(|a| a == "--bench") {
        measure("small", 100, 10);
        measure("target", 10_000, 200);
        measure("one principal, all bindings", 10_000, 1);
    } else {
        measure("smoke", 1_000, 10);
    }
}
