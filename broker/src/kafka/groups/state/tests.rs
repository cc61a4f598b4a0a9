//! The group state machine's unit tests.
use super::*;

const SESSION: Duration = Duration::from_secs(10);
const DELAY: Duration = Duration::from_millis(300);

fn request(member: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member.to_owned(),
        client_id: "c".to_owned(),
        client_host: String::new(),
        session_timeout: SESSION,
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".to_owned(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
        handshake: true,
    }
}

fn now_answer(reply: Reply<Joined>) -> Joined {
    match reply {
        Reply::Now(j) => j,
        Reply::Later(_) => panic!("expected an answer now"),
    }
}

fn later<T: std::fmt::Debug>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(r) => r,
        Reply::Now(a) => panic!("expected to wait, got {a:?}"),
    }
}

/// Joins `id` through the handshake; returns the waiting answer.
fn join(g: &mut Group, id: &str, now: Instant) -> oneshot::Receiver<Joined> {
    let first = now_answer(g.join(request("", &["range"]), now, DELAY, id.to_owned()));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    assert_eq!(first.member_id, id);
    later(g.join(request(id, &["range"]), now, DELAY, "unused".into()))
}

#[test]
fn a_member_joins_through_the_handshake_and_leads_after_the_initial_delay() {
    let (mut g, t0) = (Group::default(), Instant::now());
    let unknown = now_answer(g.join(request("forged", &["range"]), t0, DELAY, "x".into()));
    assert_eq!(unknown.error, ResponseError::UnknownMemberId.code());
    let mut a = join(&mut g, "a", t0);
    assert!(a.try_recv().is_err(), "the initial delay holds the first join");
    g.tick(t0 + DELAY);
    let joined = a.try_recv().unwrap();
    assert_eq!((joined.error, joined.generation, joined.leader.as_str()), (0, 1, "a"));
    assert_eq!(joined.protocol, "range");
    assert_eq!(joined.members, vec![("a".to_owned(), Bytes::from("meta-range"))]);
    assert_eq!(g.phase, Phase::Syncing);
    match g.sync("a", 1, vec![("a".into(), Bytes::from("all"))], t0) {
        Reply::Now(Ok(assignment)) => assert_eq!(assignment, Bytes::from("all")),
        other => panic!("{other:?}"),
    }
    assert_eq!(g.phase, Phase::Stable);
}

/// A stable group of `a` at generation 1.
fn stable(t0: Instant) -> Group {
    let mut g = Group::default();
    let _a = join(&mut g, "a", t0);
    g.tick(t0 + DELAY);
    let _ = g.sync("a", 1, vec![("a".into(), Bytes::from("p0,p1"))], t0);
    g
}

#[test]
fn a_second_member_makes_everyone_rejoin_and_the_leader_assigns_both() {
    let t0 = Instant::now();
    let mut g = stable(t0);
    let mut b = join(&mut g, "b", t0);
    assert_eq!(g.heartbeat("a", 1, t0), ResponseError::RebalanceInProgress.code());
    assert!(b.try_recv().is_err(), "b waits for a");
    let mut a = later(g.join(request("a", &["range"]), t0, DELAY, "unused".into()));
    let (ja, jb) = (a.try_recv().unwrap(), b.try_recv().unwrap());
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(ja.leader, "a");
    assert_eq!(ja.members.len(), 2);
    assert!(jb.members.is_empty(), "only the leader gets the member list");
    let mut b_sync = later(g.sync("b", 2, Vec::new(), t0));
    let assignments = vec![("a".into(), Bytes::from("p0")), ("b".into(), Bytes::from("p1"))];
    assert!(matches!(g.sync("a", 2, assignments, t0), Reply::Now(Ok(ref x)) if x == &Bytes::from("p0")));
    assert_eq!(b_sync.try_recv().unwrap(), Ok(Bytes::from("p1")));
    assert_eq!(g.heartbeat("b", 2, t0), 0);
    assert_eq!(g.heartbeat("b", 1, t0), ResponseError::IllegalGeneration.code());
    assert_eq!(g.heartbeat("zombie", 2, t0), ResponseError::UnknownMemberId.code());
    assert_eq!(g.check_commit("b", 1, t0), Err(ResponseError::IllegalGeneration.code()));
    assert_eq!(g.check_commit("", -1, t0), Err(ResponseError::UnknownMemberId.code()), "not into a live group");
}

#[test]
fn a_member_whose_session_lapses_is_removed_and_the_rest_rebalance() {
    let t0 = Instant::now();
    let mut g = stable(t0);
    let _b = join(&mut g, "b", t0);
    let _a = g.join(request("a", &["range"]), t0, DELAY, "unused".into());
    let _ = g.sync("a", 2, vec![], t0);
    assert_eq!(g.phase, Phase::Stable);
    // b keeps beating, a goes silent.
    let later_on = t0 + SESSION / 2;
    assert_eq!(g.heartbeat("b", 2, later_on), 0);
    assert_eq!(g.tick(t0 + SESSION + Duration::from_millis(1)), vec!["a".to_owned()]);
    assert_eq!(g.heartbeat("b", 2, t0 + SESSION), ResponseError::RebalanceInProgress.code());
    let mut b = later(g.join(request("b", &["range"]), t0 + SESSION, DELAY, "unused".into()));
    let joined = b.try_recv().unwrap();
    assert_eq!((joined.generation, joined.leader.as_str()), (3, "b"));
}

#[test]
fn a_member_that_never_rejoins_is_dropped_at_the_rebalance_timeout() {
    let t0 = Instant::now();
    let mut g = stable(t0);
    let mut b = join(&mut g, "b", t0);
    // a heartbeats (so its session holds) but never rejoins.
    assert!(b.try_recv().is_err());
    g.tick(t0 + Duration::from_secs(31));
    let joined = b.try_recv().unwrap();
    assert_eq!((joined.generation, joined.leader.as_str()), (2, "b"));
    assert!(!g.members.contains_key("a"));
}

#[test]
fn leaving_rebalances_the_rest_and_the_last_one_empties_the_group() {
    let t0 = Instant::now();
    let mut g = stable(t0);
    let _b = join(&mut g, "b", t0);
    let _a = g.join(request("a", &["range"]), t0, DELAY, "unused".into());
    let _ = g.sync("a", 2, vec![], t0);
    assert_eq!(g.leave(&["a".to_owned(), "ghost".to_owned()], t0), vec![0, ResponseError::UnknownMemberId.code()]);
    assert!(matches!(g.phase, Phase::Joining { .. }));
    assert_eq!(g.leave(&["b".to_owned()], t0), vec![0]);
    assert_eq!(g.phase, Phase::Empty);
}

#[test]
fn a_member_waiting_for_its_assignment_is_alive_and_answered_when_removed() {
    let t0 = Instant::now();
    let mut g = stable(t0);
    let _b = join(&mut g, "b", t0);
    let _a = g.join(request("a", &["range"]), t0, DELAY, "unused".into());
    let mut b_sync = later(g.sync("b", 2, Vec::new(), t0));
    // The leader is slow: b waits past its session, and is not expired for it.
    let late = t0 + SESSION + Duration::from_secs(1);
    assert_eq!(g.heartbeat("a", 2, late), 0);
    assert!(g.tick(late).is_empty());
    // b is removed (it left from another connection): its wait is answered.
    assert_eq!(g.leave(&["b".to_owned()], late), vec![0]);
    assert_eq!(b_sync.try_recv().unwrap(), Err(ResponseError::UnknownMemberId.code()));
}

#[test]
fn the_protocol_is_one_all_support_and_a_member_supporting_none_is_refused() {
    let t0 = Instant::now();
    let mut g = Group::default();
    let _ = g.join(request("", &["cooperative-sticky", "range"]), t0, DELAY, "a".into());
    let _a = later(g.join(request("a", &["cooperative-sticky", "range"]), t0, DELAY, "-".into()));
    let _ = g.join(request("", &["range"]), t0, DELAY, "b".into());
    let mut b = later(g.join(request("b", &["range"]), t0, DELAY, "-".into()));
    g.tick(t0 + DELAY);
    assert_eq!(b.try_recv().unwrap().protocol, "range");
    let refused = now_answer(g.join(request("", &["roundrobin"]), t0, DELAY, "c".into()));
    assert_eq!(refused.error, ResponseError::InconsistentGroupProtocol.code());
    let mut other_type = request("", &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(
        now_answer(g.join(other_type, t0, DELAY, "d".into())).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

#[test]
fn a_group_holds_at_most_its_maximum_of_members_and_pending_ids() {
    let mut g = Group::default();
    let now = Instant::now();
    for i in 0..MAX_GROUP_SIZE {
        let answer = now_answer(g.join(request("", &["range"]), now, DELAY, format!("m{i}")));
        assert_eq!(answer.error, ResponseError::MemberIdRequired.code());
    }
    let refused = now_answer(g.join(request("", &["range"]), now, DELAY, "one-too-many".into()));
    assert_eq!(refused.error, ResponseError::GroupMaxSizeReached.code());
    // A pending id handed out before is still good.
    drop(later(g.join(request("m7", &["range"]), now, DELAY, "unused".into())));
    // Unused ids lapse (within a minute, whatever the session timeout), and room comes back.
    let mut long = request("", &["range"]);
    long.session_timeout = Duration::from_secs(1800);
    let after = now + Duration::from_secs(61);
    let answer = now_answer(g.join(long, after, DELAY, "later".into()));
    assert_eq!(answer.error, ResponseError::MemberIdRequired.code());
}
