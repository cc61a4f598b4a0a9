//! The gRPC API with authentication required (`--auth-required`): the
//! servers authenticate each other by certificate; a user logs in with
//! SCRAM (`goulette --user`, the password in GOULETTE_PASSWORD) and its
//! token is accepted by the sentinel and by every broker; a caller with
//! neither a token nor a certificate is refused and told how to log in; a
//! wrong password and an unknown user are refused alike; the internal
//! service takes no user token; ACLs bind users; certificate rules
//! (`--tls-principal-rules`) make a client certificate a user, rewritten.

#![allow(clippy::unwrap_used)]

#[path = "secure/mod.rs"]
mod secure;

use std::path::Path;
use std::process::Output;

use goulette_sentinel::testkit::http_get;
use secure::{SecureCluster, stderr, write};

#[test]
fn given_auth_required_users_should_log_in_with_scram_and_strangers_should_be_refused() {
    let c = SecureCluster::start(2, &["--auth-failure-delay", "200ms", "--audit-log", "audit.log"]);
    let (sentinel, brokers, ca_file) = (&c.sentinel, &c.brokers, c.ca_file.clone());
    let cli = |extra: &[&str], env: &[(&str, &str)], args: &[&str], stdin: &[u8]| c.cli(extra, env, args, stdin);
    // The operator, with a certificate of the cluster's CA, creates the first user.
    let operator = c.operator();
    c.wait_brokers_up();
    let out = cli(&operator, &[("GOULETTE_USER_PASSWORD", "alice-secret")], &["user", "create", "alice"], b"");
    assert!(out.status.success(), "{}", stderr(&out));

    // Nothing but the CA: refused, and told how to log in.
    let out = cli(&[], &[], &["topic", "list"], b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("authentication required") && stderr(&out).contains("--user"), "{}", stderr(&out));

    // alice logs in; her token works on the sentinel and on both brokers
    // (a replicated topic: produce to its leader, consume from it).
    let alice = [("GOULETTE_USER", "alice"), ("GOULETTE_PASSWORD", "alice-secret")];
    let ok = |args: &[&str], stdin: &[u8]| {
        let out = cli(&[], &alice, args, stdin);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["topic", "create", "guarded", "--partitions", "2", "--replication-factor", "2"], b"");
    ok(&["produce", "--topic", "guarded", "-K", ":"], b"a:one\nb:two\nc:three\n");
    let mut got: Vec<String> =
        ok(&["consume", "--topic", "guarded", "-o", "beginning", "-e"], b"").lines().map(str::to_owned).collect();
    got.sort();
    assert_eq!(got, ["one", "three", "two"]);

    // A wrong password and an unknown user: the same refusal, after the delay.
    let wrong = cli(&[], &[("GOULETTE_USER", "alice"), ("GOULETTE_PASSWORD", "guess")], &["topic", "list"], b"");
    let unknown = cli(&[], &[("GOULETTE_USER", "mallory"), ("GOULETTE_PASSWORD", "guess")], &["topic", "list"], b"");
    assert!(!wrong.status.success() && !unknown.status.success());
    // The same words after the user's name.
    let reason = |out: &Output| stderr(out).split_once(" authentication failed").map(|(_, r)| r.to_owned());
    assert!(reason(&wrong).is_some_and(|r| r.contains("invalid credentials")), "{}", stderr(&wrong));
    assert_eq!(reason(&wrong), reason(&unknown));
    let (_, metrics) = http_get(sentinel.http_address, "/metrics").unwrap();
    let failures: f64 = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("goulette_sentinel_auth_failures_total{reason=\"invalid-credentials\"} "))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum();
    assert!(failures >= 2.0, "{metrics}");
    assert!(sentinel.log().contains("authentication-failed"), "no audit line");

    // Brokers check too: a call straight to a broker, over TLS with the CA
    // but without a token, is refused.
    let tls = goulette_proto::channel::ClientTls::from_files(Path::new(&ca_file), None, None).unwrap();
    goulette_proto::channel::use_tls(tls).unwrap();
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let options = goulette_proto::channel::ChannelOptions::INTERNAL.without_keep_alive();
        let channel = goulette_proto::channel::lazy(&brokers[0].address.to_string(), options).unwrap();
        let req = goulette_proto::v1::ListOffsetsRequest { topic: "guarded".into(), partition: 0, timestamp: None };
        goulette_proto::v1::broker_service_client::BrokerServiceClient::new(channel).list_offsets(req).await
    });
    assert_eq!(status.map(|_| ()).unwrap_err().code(), tonic::Code::Unauthenticated);

    // A deleted user can no longer log in.
    let out = cli(&operator, &[], &["user", "delete", "alice"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    // The sentinel's audit log has the changes, with who made them.
    let audit = std::fs::read_to_string(sentinel.dir().join("audit.log")).unwrap_or_else(|e| {
        let listing: Vec<_> = std::fs::read_dir(sentinel.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        panic!("{e}: {listing:?}\n{}", sentinel.log())
    });
    let events: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let event = |name: &str| events.iter().find(|e| e["fields"]["event"] == name).cloned();
    let created = event("create-user").unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(
        (created["fields"]["what"].as_str(), created["fields"]["principal"].as_str()),
        (Some("alice"), Some("certificate"))
    );
    // Metadata changes too, with their author and how they ended.
    let topic = event("create-topic").unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(
        (topic["fields"]["what"].as_str(), topic["fields"]["principal"].as_str(), topic["fields"]["outcome"].as_str()),
        (Some("guarded"), Some("User:alice"), Some("done"))
    );
    assert!(event("delete-user").is_some() && event("authentication-failed").is_some(), "{audit}");
    let out = cli(&[], &alice, &["topic", "list"], b"");
    assert!(!out.status.success(), "a deleted user logged in");
}

#[test]
fn given_acls_on_grpc_a_user_should_do_only_what_its_bindings_allow() {
    let c = SecureCluster::start(1, &["--acl-enabled", "true"]);
    let run = |extra: &[&str], env: &[(&str, &str)], args: &[&str], stdin: &[u8]| c.cli(extra, env, args, stdin);
    // The operator's certificate makes it a server: everything is allowed.
    let operator = c.operator();
    let admin = |args: &[&str]| {
        let out = run(&operator, &[("GOULETTE_USER_PASSWORD", "alice-pw")], args, b"");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    c.wait_brokers_up();
    admin(&["user", "create", "alice"]);
    admin(&["topic", "create", "hidden", "--partitions", "1"]);
    let alice = [("GOULETTE_USER", "alice"), ("GOULETTE_PASSWORD", "alice-pw")];
    let as_alice = |args: &[&str], stdin: &[u8]| run(&[], &alice, args, stdin);
    let refused = |out: Output| {
        assert!(!out.status.success() && stderr(&out).contains("may not"), "not refused: {}", stderr(&out));
    };

    // Nothing allowed: she sees no topic, creates none, lists no ACL.
    let out = as_alice(&["topic", "list"], b"");
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("hidden"), "{out:?}");
    refused(as_alice(&["topic", "create", "mine", "--partitions", "1"], b""));
    refused(as_alice(&["acl", "list"], b""));

    // Each binding opens exactly its operation.
    admin(&["acl", "add", "--principal", "User:alice", "--operation", "create", "--topic", "mine"]);
    let out = as_alice(&["topic", "create", "mine", "--partitions", "1"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    // (Producing needs WRITE; without any binding on the topic she is
    // refused at its description already.)
    refused(as_alice(&["produce", "--topic", "mine"], b"one\n"));
    // With DESCRIBE she finds the leader, which refuses the write itself.
    admin(&["acl", "add", "--principal", "User:alice", "--operation", "describe", "--topic", "mine"]);
    let out = as_alice(&["produce", "--topic", "mine"], b"one\n");
    assert!(!out.status.success() && stderr(&out).contains("may not write topic mine"), "{}", stderr(&out));
    let out = run(&operator, &[], &["produce", "--topic", "mine"], b"zero\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_alice(&["consume", "--topic", "mine", "-o", "beginning", "-e"], b"");
    assert!(!out.status.success() && stderr(&out).contains("may not read topic mine"), "{}", stderr(&out));
    admin(&["acl", "add", "--principal", "User:alice", "--operation", "write,read", "--topic", "mine"]);
    let out = as_alice(&["produce", "--topic", "mine"], b"one\ntwo\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_alice(&["consume", "--topic", "mine", "-o", "beginning", "-e"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "zero\none\ntwo\n", "{}", stderr(&out));
    // The other topic stays closed to her.
    let out = as_alice(&["consume", "--topic", "hidden", "-o", "beginning", "-e"], b"");
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn given_certificate_rules_a_client_certificate_should_act_as_the_user_its_rewritten_name_gives() {
    // Servers and the operator keep their common names; users' certificates
    // (NAME.users.example) stand for NAME.
    let rules = r"cn:/([a-z]+)\.users\.example/$1/L,cn";
    let c = SecureCluster::start(
        1,
        &["--acl-enabled", "true", "--tls-principal-rules", rules, "--super-users", "User:127.0.0.1,User:operator"],
    );
    let operator = c.operator();
    c.wait_brokers_up();
    let admin = |args: &[&str]| {
        let out = c.cli(&operator, &[], args, b"");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    admin(&["topic", "create", "inbox", "--partitions", "1"]);
    let carol = c.ca.issue(&["carol.users.example"]);
    let (cert, key) = (write(c.dir.path(), "carol.crt", &carol.cert), write(c.dir.path(), "carol.key", &carol.key));
    let as_carol = |args: &[&str], stdin: &[u8]| c.cli(&["--tls-cert", &cert, "--tls-key", &key], &[], args, stdin);

    // No binding for User:carol yet: refused, and by that name.
    let out = as_carol(&["produce", "--topic", "inbox"], b"one\n");
    assert!(!out.status.success() && stderr(&out).contains("may not"), "{}", stderr(&out));
    admin(&["acl", "add", "--principal", "User:carol", "--operation", "write,describe", "--topic", "inbox"]);
    let out = as_carol(&["produce", "--topic", "inbox"], b"one\n");
    assert!(out.status.success(), "{}", stderr(&out));
    // Writing is all she may do.
    let out = as_carol(&["consume", "--topic", "inbox", "-o", "beginning", "-e"], b"");
    assert!(!out.status.success() && stderr(&out).contains("may not read topic inbox"), "{}", stderr(&out));
    let out = c.cli(&operator, &[], &["consume", "--topic", "inbox", "-o", "beginning", "-e"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n", "{}", stderr(&out));
}
