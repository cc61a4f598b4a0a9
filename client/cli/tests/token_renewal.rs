//! A program that stays logged in longer than a token lives: the client
//! library's login session renews the token before it expires, and once
//! the session is dropped the last token expires and calls are refused.
//! (Its own test binary: the process's client TLS is set once, to this
//! cluster's CA.)

#![allow(clippy::unwrap_used)]

#[path = "secure/mod.rs"]
mod secure;

use std::path::Path;
use std::time::{Duration, Instant};

use secure::{SecureCluster, stderr};

#[test]
fn given_a_short_token_ttl_a_logged_in_session_should_keep_working_until_dropped() {
    let c = SecureCluster::start(1, &["--auth-token-ttl", "2s"]);
    let operator = c.operator();
    c.wait_brokers_up();
    let out = c.cli(&operator, &[("GOULETTE_USER_PASSWORD", "bob-secret")], &["user", "create", "bob"], b"");
    assert!(out.status.success(), "{}", stderr(&out));

    let tls = goulette_proto::channel::ClientTls::from_files(Path::new(&c.ca_file), None, None).unwrap();
    goulette_proto::channel::use_tls(tls).unwrap();
    let sentinels = vec![c.sentinel.address.to_string()];
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let session = goulette_client::login::login(&sentinels, "bob", "bob-secret").await.unwrap();
        assert_eq!(session.token().ttl, Duration::from_secs(2));
        let cluster = goulette_client::Cluster::new(sentinels).unwrap().fail_fast();
        // Three lifetimes of a token: every call in them is accepted.
        let started = Instant::now();
        let mut calls = 0;
        while started.elapsed() < Duration::from_secs(6) {
            cluster.cluster_status().await.unwrap_or_else(|e| panic!("after {:?}: {e}", started.elapsed()));
            calls += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(calls >= 12, "{calls} calls");

        // No session, no renewal: within a lifetime (and the renewal's
        // lead), the last token expires and the sentinel refuses it.
        drop(session);
        let mut refused = None;
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Err(e) = cluster.cluster_status().await {
                refused = Some(e.to_string());
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let refused = refused.expect("calls still accepted 5 s after the session ended");
        assert!(refused.contains("expired") || refused.contains("authentication"), "{refused}");
    });
}
