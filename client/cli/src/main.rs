//! `goulette`: the command-line client.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use goulette_cli::cli::{self, ConsumeOptions, Format, ProduceOptions, RecordFormat};
use goulette_cli::etcd_admin::{EtcdAdmin, EtcdTarget};
use goulette_client::{Cluster, StartAt};
use goulette_metadata::keys::DEFAULT_PREFIX;
use goulette_proto::v1::Acks;

/// Goulette command-line client.
#[derive(Debug, Parser)]
#[command(name = "goulette", version)]
struct Cli {
    /// Comma-separated sentinel addresses (default: the profile's, else 127.0.0.1:50052).
    #[arg(long, global = true, env = "GOULETTE_SENTINELS", value_delimiter = ',')]
    sentinels: Option<Vec<String>>,
    /// The connection profile to use instead of the current one (see `goulette profile`).
    #[arg(long, global = true, env = "GOULETTE_PROFILE", value_name = "NAME")]
    profile: Option<String>,
    /// Connect to the cluster over TLS, trusting these CAs (PEM) (default:
    /// the profile's; without one, plaintext).
    #[arg(long, global = true, env = "GOULETTE_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Certificate (PEM) to present to a cluster with mutual TLS (with --tls-key).
    #[arg(long, global = true, env = "GOULETTE_CLIENT_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, global = true, env = "GOULETTE_CLIENT_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Log in as this user (SCRAM-SHA-512) before anything else, on a
    /// cluster that requires it (default: the profile's user).
    #[arg(long, global = true, env = "GOULETTE_USER", value_name = "NAME")]
    user: Option<String>,
    /// The password of --user (prefer the environment variable: flags are
    /// visible to other local users).
    #[arg(long, global = true, env = "GOULETTE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connection profiles: named sentinel (and etcd) addresses, one of them
    /// current, stored in the user's configuration directory.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Create, list, describe and delete topics.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// Send messages: `--message`, or each line of stdin (batched and pipelined).
    ///
    /// A line is sent byte for byte (UTF-8 or not), without its newline.
    /// Exits 0 only if every message was acknowledged; otherwise says how
    /// many were not.
    Produce {
        /// Topic to send to (created with the cluster defaults if unknown and allowed).
        #[arg(long)]
        topic: String,
        /// Key of every message (same key, same partition).
        #[arg(long, conflicts_with = "key_separator")]
        key: Option<String>,
        /// Split each stdin line at the first SEP into key and value (kcat's
        /// -K); a line without SEP is a value without key.
        #[arg(short = 'K', long, value_name = "SEP", conflicts_with = "input_format")]
        key_separator: Option<String>,
        /// How each stdin line splits into a record (rpk's -f): %k key, %v
        /// value, %h headers (name=value,...), %p partition, with text between
        /// them, e.g. '%k\t%v' or '%p:%k=%h|%v'. A line that does not match is
        /// not sent (and fails the run).
        #[arg(long, value_name = "FORMAT", value_parser = cli::parse_input_format)]
        input_format: Option<cli::InputFormat>,
        /// A header on every message, `name=value` (repeat for several).
        #[arg(short = 'H', long = "header", value_name = "NAME=VALUE", value_parser = cli::parse_header)]
        headers: Vec<(String, bytes::Bytes)>,
        /// A tag on every message (repeat for several), which consumers
        /// filter on with `consume --tags` (a `goulette-tag` header).
        #[arg(long = "tag", value_name = "TAG", value_parser = cli::parse_tag)]
        tags: Vec<String>,
        /// Deliver every message to consumers at TIME, not before: RFC 3339
        /// (2026-12-24T18:00:00Z) or ms since the Unix epoch. Stored (and
        /// acknowledged) at once; see docs/delayed.md.
        #[arg(long, value_name = "TIME", value_parser = cli::parse_deliver_at, conflicts_with = "delay")]
        deliver_at: Option<i64>,
        /// Deliver every message to consumers this long after it is sent
        /// (30s, 15m, 2h): stored (and acknowledged) at once.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        delay: Option<std::time::Duration>,
        /// Send to this partition instead of choosing by key or round-robin.
        #[arg(long)]
        partition: Option<u32>,
        /// Acknowledgement: 0 (none), 1 (leader) or all (every in-sync replica).
        #[arg(long, default_value = "all", value_parser = cli::parse_acks)]
        acks: Acks,
        /// Compression of the batches: none, gzip, snappy, lz4 or zstd.
        #[arg(long, default_value = "none", value_parser = cli::parse_compression)]
        compression: goulette_client::Compression,
        /// Batches in flight per partition.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Send this one message instead of reading stdin.
        #[arg(long, conflicts_with = "files")]
        message: Option<String>,
        /// Send each FILE's whole content as one message instead of reading
        /// stdin (repeat, or list several).
        #[arg(long = "file", value_name = "FILE", num_args = 1..)]
        files: Vec<PathBuf>,
        /// Send a tombstone (a null value: on a compacted topic, it deletes
        /// the key) for KEY instead of reading stdin (repeat for several).
        #[arg(long = "tombstone", value_name = "KEY", conflicts_with_all = ["message", "files"])]
        tombstones: Vec<String>,
        /// Print `partition<TAB>offset` for every acknowledged message.
        #[arg(long)]
        print_offsets: bool,
        /// Number batches so that a retried one is stored once
        /// (`--idempotent=false` to turn off).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        idempotent: bool,
    },
    /// Print messages of a topic (or of several, interleaved).
    Consume {
        /// Topic to read; several (repeated, or comma-separated) are read at
        /// once, interleaved as they arrive (not with --group).
        #[arg(long = "topic", required = true, value_delimiter = ',')]
        topics: Vec<String>,
        /// Start at the oldest retained message (default: only new messages).
        #[arg(long, conflicts_with_all = ["offset", "from_timestamp", "start"])]
        from_beginning: bool,
        /// Start at this offset (needs --partition when the topic has several).
        #[arg(long, conflicts_with_all = ["from_timestamp", "start"])]
        offset: Option<u64>,
        /// Start at the first message at or after this time: RFC 3339
        /// (2026-11-22T10:00:00Z; without a zone, UTC) or a duration ago (-1h).
        #[arg(long, value_parser = cli::parse_time, conflicts_with = "start", allow_hyphen_values = true)]
        from_timestamp: Option<i64>,
        /// Where to start, kcat's -o: beginning, end, an offset N, -N (the
        /// last N of each partition), @TIME or @-DURATION (e.g. @-1h, @2026-12-01T10:00).
        #[arg(short = 'o', long, value_parser = cli::parse_start, allow_hyphen_values = true)]
        start: Option<StartAt>,
        /// Read only this partition.
        #[arg(long)]
        partition: Option<u32>,
        /// Stop after this many messages.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Stop when nothing arrives for this long (e.g. 5s). SIGINT and
        /// SIGTERM stop the run too (a group member commits and leaves).
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// Bytes prefetched per partition (fetch credit).
        #[arg(long, default_value_t = 4 << 20)]
        window: u64,
        /// `value` prints each value on a line; `json` one object per record
        /// (topic, partition, offset, timestamp, key, value, headers; what is
        /// not UTF-8 in base64, named in "encoded"); or a format string:
        /// %t topic, %p partition, %o offset, %T timestamp, %k key, %v value,
        /// %h headers, %K/%S key/value size, %%, \n, \t (e.g. '%p:%o %k=%v\n').
        #[arg(long, default_value = "value", value_parser = cli::parse_record_format)]
        format: RecordFormat,
        /// How `value` and format strings write keys, values and header
        /// values: raw bytes, hex, or base64.
        #[arg(long, value_enum, default_value = "raw")]
        encoding: cli::Encoding,
        /// Exit once every partition read has been read to the end it had at
        /// the start (kcat's -e); not with --group unless --partition is given.
        #[arg(short = 'e', long)]
        exit_at_end: bool,
        /// Consume as a member of this group: the group's partitions are
        /// split among its members, each resumes at the committed offset
        /// (the start options apply to partitions never committed), and what
        /// is printed is committed (every second, before a partition is
        /// handed on, and at exit, Ctrl-C included). With --partition, reads
        /// that partition outside membership and only commits.
        #[arg(long)]
        group: Option<String>,
        /// The group's assignment strategy: sticky, range or round-robin.
        #[arg(long, default_value = "sticky", requires = "group")]
        strategy: String,
        /// A group member silent this long loses its partitions to the others.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", requires = "group")]
        session_timeout: Duration,
        /// Fail at once when the topic does not exist (by default consume
        /// waits for its first producer to create it).
        #[arg(long)]
        no_wait: bool,
        /// Only messages tagged with one of these tags: `TagA || TagB`
        /// (`*`: all). The broker filters, so the others are not sent;
        /// a group's committed offsets still move past them.
        #[arg(long, value_name = "FILTER", value_parser = cli::parse_tag_filter)]
        tags: Option<String>,
    },
    /// Cluster health.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Consumer groups: members, assignments, committed offsets and lag.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// ACL bindings: who may do what on which topics, groups and the cluster.
    Acl {
        #[command(subcommand)]
        command: cli::AclCommand,
    },
    /// Users and their SCRAM credentials (for SASL logins).
    User {
        #[command(subcommand)]
        command: cli::UserCommand,
    },
    /// Broker administration.
    Broker {
        #[command(subcommand)]
        command: BrokerCommand,
    },
    /// Offline tools over a broker's data directory.
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// Read and administer Goulette's metadata directly in etcd (no sentinel needed).
    Etcd(EtcdArgs),
    /// Load generator: throughput and latency percentiles (produce, consume, e2e).
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// `produce`; `consume` (catch-up read of the existing backlog); `e2e`
    /// (publish-to-delivery latency).
    #[arg(value_enum)]
    mode: goulette_cli::bench::Mode,
    /// Topic to use (created with --partitions and --replication-factor when missing).
    #[arg(long, default_value = "bench")]
    topic: String,
    /// Partitions when the run creates the topic.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Replicas per partition when the run creates the topic.
    #[arg(long, default_value_t = 1)]
    replication_factor: u32,
    /// Producers, each with its own connections.
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// Consumers, each with its own connections (the partitions are split among them).
    #[arg(long, default_value_t = 1)]
    consumers: u32,
    /// Bytes per message (random, incompressible).
    #[arg(long, default_value_t = 1024)]
    message_size: usize,
    /// Bytes per batch.
    #[arg(long, default_value_t = 256 << 10)]
    batch_size: usize,
    /// How long a batch waits to fill (e.g. 5ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5ms")]
    linger: Duration,
    /// Batches in flight per partition.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Acknowledgement: 0 (none), 1 (leader) or all (every in-sync replica).
    #[arg(long, default_value = "all", value_parser = cli::parse_acks)]
    acks: Acks,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = cli::parse_compression)]
    compression: goulette_client::Compression,
    /// Number batches so that a retried one is stored once (`--idempotent=false` to turn off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    idempotent: bool,
    /// Messages to send (or, consuming, to read at most). Produce and e2e
    /// runs need --count or --duration.
    #[arg(long)]
    count: Option<u64>,
    /// Run this long (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Messages per second over all producers (open loop: latency from each
    /// message's intended send time).
    #[arg(long)]
    rate: Option<u64>,
    /// Write the results as JSON to this file (`-`: to stdout, the summary then going to stderr).
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// No progress line on stderr (there is none either when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
    /// Delete the topic after the run if the run created it.
    #[arg(long)]
    delete_topic: bool,
    /// Key the messages over this many keys (`k0`, `k1`, …, in turn;
    /// default: no keys).
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    keys: u64,
    /// Cleanup policy of the topic when the run creates it (`compact` needs `--keys`).
    #[arg(long, default_value = "delete", value_parser = goulette_proto::cleanup_policy::parse)]
    cleanup_policy: goulette_proto::v1::CleanupPolicy,
    /// Delay every message this long (delayed delivery: stored at once,
    /// delivered to consumers when due).
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Option<Duration>,
    /// Worker threads of the client's runtime (default: one per core). With
    /// one message in flight, one thread saves the wake-ups between threads
    /// that each hop (send, connection, acknowledgement) otherwise costs.
    #[arg(long)]
    threads: Option<usize>,
    /// Consume: every consumer reads the whole backlog (as consumers in
    /// different groups do), each at most --count messages, instead of a
    /// share of the partitions.
    #[arg(long)]
    fanout: bool,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic's name.
        name: String,
        /// Number of partitions (default: the cluster's).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        partitions: u32,
        /// Replicas per partition (default: the cluster's).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        replication_factor: u32,
        /// In-sync replicas an `acks=all` write needs (default: 2 when the
        /// replication factor is at least 3, else 1).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        min_insync_replicas: u32,
        /// Let a replica outside the ISR lead when no in-sync one is alive
        /// (availability over durability: acknowledged messages may be lost).
        #[arg(long)]
        unclean_leader_election: bool,
        /// Delete whole fragments older than this many milliseconds (default: the brokers' --retention-ms).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        retention_ms: u64,
        /// Delete the oldest fragments while a partition holds more bytes (default: no limit).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        retention_bytes: u64,
        #[command(flatten)]
        cleanup: cli::CleanupOptions,
    },
    /// List topics.
    List {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// A topic's settings (effective values, defaults marked) and partitions:
    /// leader, replicas, ISR, leader epoch, log start and end offsets.
    Describe {
        /// The topic's name.
        name: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Change a topic's settings; brokers apply them without a restart.
    /// Only the options given change.
    Alter {
        /// The topic's name.
        name: String,
        /// Delete whole fragments older than this many milliseconds (0: back to the broker default).
        #[arg(long)]
        retention_ms: Option<u64>,
        /// Delete the oldest fragments while a partition holds more bytes (0: no limit).
        #[arg(long)]
        retention_bytes: Option<u64>,
        /// In-sync replicas an `acks=all` write needs (0: back to the default).
        #[arg(long)]
        min_insync_replicas: Option<u32>,
        /// Let a replica outside the ISR lead when no in-sync one is alive (true or false).
        #[arg(long)]
        unclean_leader_election: Option<bool>,
        #[command(flatten)]
        cleanup: cli::CleanupOptions,
    },
    /// Grow a topic to more partitions (never fewer). Keys hash over the
    /// new count from then on, so a key's later messages may go to another
    /// partition than its earlier ones.
    AddPartitions {
        /// The topic's name.
        name: String,
        /// The topic's new partition count.
        #[arg(long)]
        total: u32,
    },
    /// Delete a topic and its data.
    Delete {
        /// The topic's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Groups with members or committed offsets.
    List,
    /// Delete a group's committed offsets and membership state (refused while it has members).
    Delete {
        /// The group's name.
        group: String,
    },
    /// Members and their partitions, then the committed offset, log end and
    /// lag of each partition of the group's topics.
    Describe {
        /// The group's name.
        group: String,
        /// Only this topic (default: the members' topics and those with commits).
        #[arg(long)]
        topic: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Move a group's committed offsets: `earliest`, `latest`, an offset, or
    /// an RFC 3339 time (the first record at or after it). Refused while the
    /// group has members.
    Reset {
        /// The group's name.
        group: String,
        /// The topic whose committed offsets move (every partition of it).
        #[arg(long)]
        topic: String,
        /// Where to: earliest, latest, an offset, or an RFC 3339 time.
        #[arg(long, value_parser = cli::parse_reset_to)]
        to: cli::ResetTo,
        /// Print each partition's committed offset and where it would move,
        /// and commit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Change a group's settings (kept by the cluster until changed).
    Alter {
        /// The group's name.
        group: String,
        /// Deliveries of a record before a nack moves it to the group's
        /// dead-letter topic (docs/redelivery.md).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        max_deliveries: u32,
    },
    /// Send a group's dead letters back to their source topics and
    /// partitions (key, value, timestamp and headers as they were), from
    /// where its last redrive stopped to the dead-letter topic's end now.
    Redrive {
        /// The group's name.
        group: String,
        /// The dead-letter topic (default: `GROUP.dlq`).
        #[arg(long)]
        dead_letter_topic: Option<String>,
        /// At most this many records (default: all).
        #[arg(long)]
        max: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Create (or replace) a profile with the addresses given by --sentinels
    /// (and the TLS files given by --tls-ca, --tls-cert, --tls-key).
    Create {
        /// The profile's name.
        name: String,
        /// etcd client URLs for `goulette etcd` commands (comma-separated).
        #[arg(long, value_delimiter = ',')]
        etcd_endpoints: Vec<String>,
        /// Make it the current profile.
        #[arg(long = "use")]
        make_current: bool,
    },
    /// Make a profile the current one.
    Use {
        /// The profile's name.
        name: String,
    },
    /// List the profiles, `*` marking the current one.
    List,
    /// Delete a profile.
    Delete {
        /// The profile's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum BrokerCommand {
    /// Move every replica off broker ID (each is copied from its leader to
    /// the next brokers of the ring first) and give it no new ones. Watch
    /// `cluster status` until it holds 0 replicas, then stop it.
    Decommission {
        /// The broker's id.
        id: u32,
    },
    /// Make a decommissioned broker eligible for replicas again.
    Recommission {
        /// The broker's id.
        id: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Sentinels (and the leader), brokers, partitions without a leader.
    ///
    /// Exits 0 only when a sentinel leader is known and every registered broker is up.
    Status {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Open a partition directory (running recovery; refused while a broker
    /// holds it) and print its offsets and, optionally, records.
    Inspect {
        /// The partition directory (`<data>/<topic>-<partition>`).
        dir: PathBuf,
        /// Read the files as they are, without recovery and without the
        /// directory's lock: for a running broker's partition, or a damaged
        /// one before anything is cut. Lists every file and its first bad frame.
        #[arg(long)]
        read_only: bool,
        /// Print records too.
        #[arg(long)]
        records: bool,
        /// First offset to print (default: the log start).
        #[arg(long)]
        from: Option<u64>,
        /// Most records to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Debug, Args)]
struct EtcdArgs {
    /// Comma-separated etcd client URLs (default: the profile's, else http://127.0.0.1:2379).
    #[arg(long, global = true, env = "GOULETTE_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Option<Vec<String>>,
    /// Work on a stopped cluster's etcd data directory instead of
    /// --etcd-endpoints: a temporary etcd is started on it (loopback only)
    /// for the command, then stopped. A directory that does not exist is
    /// created empty (to restore into). `make etcd-*` passes it for the
    /// default layout when the cluster is stopped.
    #[arg(long, global = true, env = "GOULETTE_ETCD_DATA_DIR", value_name = "DIR")]
    etcd_data_dir: Option<PathBuf>,
    /// The etcd member name of --etcd-data-dir: the sentinel id whose
    /// embedded etcd it is.
    #[arg(long, global = true, default_value = "sentinel-1", value_name = "NAME")]
    etcd_name: String,
    /// The peer port the temporary etcd of --etcd-data-dir listens on (the
    /// sentinel's, so that a new directory records the same peer URL;
    /// default: any free port).
    #[arg(long, global = true, value_name = "PORT")]
    etcd_peer_port: Option<u16>,
    #[command(flatten)]
    etcd_tls: goulette_proto::ops::tls::EtcdTlsArgs,
    /// The etcd key prefix Goulette's metadata lives under.
    #[arg(long, global = true, env = "GOULETTE_ETCD_PREFIX", default_value = DEFAULT_PREFIX)]
    etcd_prefix: String,
    #[command(subcommand)]
    command: EtcdCommand,
}

#[derive(Debug, Subcommand)]
enum EtcdCommand {
    /// Each endpoint's status, the member list, and how many keys each section of the prefix holds.
    Status,
    /// Every topic with its configuration and, per partition, replicas, leader, leader epoch and ISR.
    Topics,
    /// The operation log, oldest first.
    Ops {
        /// Print only the last N operations.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
    /// Write every key under the prefix to FILE as JSON, except the lease-bound ones.
    ///
    /// Keys bound to leases (`brokers/`, `sentinels/`, `election/`) are left out: they describe live
    /// processes, which register again by themselves, and must not be restored.
    Backup {
        /// The backup file (replaced atomically if it exists).
        file: PathBuf,
    },
    /// Write a backup FILE into the prefix, which must be empty.
    ///
    /// The backup's prefix must equal --etcd-prefix. Keys are written in transactions of at most
    /// 100 puts, the op counter (`counters/ops`) last. If a restore is interrupted, the prefix is
    /// left partial and without an op counter, and restoring again is refused because the prefix is
    /// not empty: run `goulette etcd clean --yes`, then restore again.
    Restore {
        /// The backup file, as written by `goulette etcd backup`.
        file: PathBuf,
    },
    /// Delete every key under the prefix (only keys under `PREFIX/`, never a sibling such as `PREFIX2/`).
    ///
    /// Stop every sentinel and broker first: they would keep writing. Take a backup if the metadata
    /// may be needed again.
    Clean {
        /// Confirm the deletion (deliberately not settable from the environment).
        #[arg(long)]
        yes: bool,
    },
}

/// The exit status of a process ended by SIGPIPE, as shells report it.
const BROKEN_PIPE_STATUS: u8 = 128 + 13;

/// Like other command-line tools, end quietly when the reader of our output
/// goes away (`goulette consume … | head`). Not by restoring SIGPIPE's
/// default action: that signal also comes from a network peer that closed
/// its connection while hyper writes to it with `writev`, and killed the
/// CLI silently (a plaintext client of a TLS cluster died with no word).
/// So SIGPIPE stays ignored (Rust's default), and a write to a closed
/// stdout — an error, or a panic in `println!` — ends the process here.
fn end_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(i32::from(BROKEN_PIPE_STATUS));
        }
        default(info);
    }));
}

/// Whether `e` is a write to a stdout nobody reads any more.
fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

fn main() -> ExitCode {
    end_quietly_on_closed_stdout();
    let cli = Cli::parse();
    let profile = match selected_profile(cli.profile.as_deref()) {
        Ok(profile) => profile,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sentinels = cli
        .sentinels
        .clone()
        .or_else(|| profile.as_ref().map(|p| p.sentinels.clone()))
        .unwrap_or_else(|| vec!["127.0.0.1:50052".to_owned()]);
    // TLS of every channel: the flags, else the profile's files.
    let tls_ca = cli.tls_ca.clone().or_else(|| profile.as_ref().and_then(|p| p.tls_ca.clone()));
    if let Some(ca) = &tls_ca {
        let cert = cli.tls_cert.clone().or_else(|| profile.as_ref().and_then(|p| p.tls_cert.clone()));
        let key = cli.tls_key.clone().or_else(|| profile.as_ref().and_then(|p| p.tls_key.clone()));
        let tls = goulette_proto::channel::ClientTls::from_files(ca, cert.as_deref(), key.as_deref())
            .and_then(goulette_proto::channel::use_tls);
        if let Err(e) = tls {
            eprintln!("error: TLS: {e}");
            return ExitCode::FAILURE;
        }
    }
    let user = cli.user.clone().or_else(|| profile.as_ref().and_then(|p| p.user.clone()));
    let credentials = match (user, cli.password.clone()) {
        (Some(user), Some(password)) => Some((user, password)),
        (Some(user), None) => {
            eprintln!("error: --user {user} needs a password: set GOULETTE_PASSWORD (or --password)");
            return ExitCode::FAILURE;
        }
        (None, _) => None,
    };
    let result = match cli.command {
        Command::Profile { command } => {
            profile_command(cli.sentinels, (cli.tls_ca, cli.tls_cert, cli.tls_key), cli.user, command)
        }
        Command::Topic { .. }
        | Command::Produce { .. }
        | Command::Consume { .. }
        | Command::Cluster { .. }
        | Command::Group { .. }
        | Command::User { .. }
        | Command::Acl { .. }
        | Command::Broker { .. } => match cluster_command(sentinels, credentials, cli.command) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Storage { command: StorageCommand::Inspect { dir, read_only, records, from, limit } } => {
            let wanted = records.then_some(goulette_cli::inspect::RecordsWanted { from, limit });
            goulette_cli::inspect::inspect(&dir, read_only, wanted).map(|report| print!("{report}"))
        }
        Command::Etcd(args) => etcd(args, profile.map(|p| p.etcd_endpoints).unwrap_or_default()),
        Command::Bench(args) => bench(&sentinels, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_closed_stdout(&e) => ExitCode::from(BROKEN_PIPE_STATUS),
        Err(e) => {
            // Every error's message already includes its cause.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `goulette bench`: runs, prints the summary, writes `--json`.
fn bench(sentinels: &[String], args: BenchArgs) -> anyhow::Result<()> {
    // Produce and e2e runs send until told when to stop; a consume run
    // reads the backlog to its end.
    if args.mode != goulette_cli::bench::Mode::Consume && args.count.is_none() && args.duration.is_none() {
        anyhow::bail!(
            "bench {} needs --count or --duration (how long to send)",
            format!("{:?}", args.mode).to_lowercase()
        );
    }
    let options = goulette_cli::bench::BenchOptions {
        mode: args.mode,
        topic: args.topic,
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        producers: args.producers,
        consumers: args.consumers,
        message_size: args.message_size,
        batch_bytes: args.batch_size,
        linger: args.linger,
        window: args.window,
        acks: args.acks,
        compression: args.compression,
        idempotent: args.idempotent,
        count: args.count,
        duration: args.duration,
        rate: args.rate,
        // A progress line rewritten in place is for a person watching.
        progress: !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        delete_topic: args.delete_topic,
        keys: args.keys,
        cleanup_policy: args.cleanup_policy,
        delay: args.delay,
        fanout: args.fanout,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    let result = runtime.block_on(goulette_cli::bench::run(sentinels, &options))?;
    let json_to_stdout = args.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if json_to_stdout {
        // stdout is the JSON alone (for jq and the like); the summary goes to stderr.
        eprint!("{}", cli::bench_summary(&result));
    } else {
        print!("{}", cli::bench_summary(&result));
    }
    if let Some(path) = args.json {
        let json = serde_json::to_string_pretty(&result)?;
        if json_to_stdout {
            println!("{json}");
        } else {
            std::fs::write(&path, json).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        }
    }
    anyhow::ensure!(result.errors == 0, "{} sends or reads failed", result.errors);
    Ok(())
}

/// Runs a command that talks to the cluster (logged in first with
/// `credentials`, if any); `Ok(false)` = partial failure.
fn cluster_command(
    sentinels: Vec<String>,
    credentials: Option<(String, String)>,
    command: Command,
) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // Kept for the command's run: a long one (consume --follow, bench)
        // outlives a token, and the session renews it.
        let _session = match credentials {
            Some((user, password)) => Some(
                goulette_client::login::login(&sentinels, &user, &password)
                    .await
                    .map_err(|e| anyhow::anyhow!("logging in as {user}: {e}"))?,
            ),
            None => None,
        };
        // A user waits on the command: no sentinel answering is an error at
        // once, not after seconds of retrying.
        let cluster = Arc::new(Cluster::new(sentinels)?.fail_fast());
        match command {
            Command::Topic { command } => match command {
                TopicCommand::Create {
                    name,
                    partitions,
                    replication_factor,
                    min_insync_replicas,
                    unclean_leader_election,
                    retention_ms,
                    retention_bytes,
                    cleanup,
                } => {
                    let mut config = goulette_proto::v1::TopicConfig {
                        name,
                        partitions,
                        replication_factor,
                        min_insync_replicas,
                        unclean_leader_election,
                        retention_ms,
                        retention_bytes,
                        ..Default::default()
                    };
                    cleanup.apply_to(&mut config);
                    cli::topic_create(cluster, config).await
                }
                TopicCommand::List { format } => cli::topic_list(cluster, format).await,
                TopicCommand::Describe { name, format } => cli::topic_describe(cluster, &name, format).await,
                TopicCommand::Alter {
                    name,
                    retention_ms,
                    retention_bytes,
                    min_insync_replicas,
                    unclean_leader_election,
                    cleanup,
                } => {
                    let mut req = goulette_proto::v1::AlterTopicRequest {
                        name,
                        retention_ms,
                        retention_bytes,
                        min_insync_replicas,
                        unclean_leader_election,
                        ..Default::default()
                    };
                    cleanup.change(&mut req);
                    cli::topic_alter(cluster, req).await
                }
                TopicCommand::AddPartitions { name, total } => cli::topic_add_partitions(cluster, &name, total).await,
                TopicCommand::Delete { name } => cli::topic_delete(cluster, &name).await,
            },
            Command::Produce {
                topic,
                key,
                key_separator,
                input_format,
                mut headers,
                tags,
                deliver_at,
                delay,
                partition,
                acks,
                compression,
                window,
                message,
                files,
                tombstones,
                print_offsets,
                idempotent,
            } => {
                headers.extend(tags.into_iter().map(|t| (goulette_client::tags::TAG_HEADER.to_owned(), t.into())));
                if let Some(at) = deliver_at {
                    headers.push((goulette_client::delayed::DELIVER_AT_HEADER.to_owned(), at.to_string().into()));
                }
                if let Some(delay) = delay {
                    let ms = delay.as_millis().to_string();
                    headers.push((goulette_client::delayed::DELAY_HEADER.to_owned(), ms.into()));
                }
                let input = match (message, files.is_empty()) {
                    _ if !tombstones.is_empty() => cli::ProduceInput::Tombstones(tombstones),
                    (Some(message), _) => cli::ProduceInput::Message(message),
                    (None, false) => cli::ProduceInput::Files(files),
                    (None, true) => cli::ProduceInput::Stdin {
                        key_separator: key_separator.map(String::into_bytes),
                        format: input_format,
                    },
                };
                let options = ProduceOptions {
                    topic,
                    key,
                    headers,
                    partition,
                    acks,
                    compression,
                    window,
                    input,
                    print_offsets,
                    idempotent,
                };
                cli::produce(cluster, options).await
            }
            Command::Consume {
                tags,
                topics,
                from_beginning,
                offset,
                from_timestamp,
                start,
                partition,
                max_messages,
                timeout,
                window,
                format,
                encoding,
                exit_at_end,
                group,
                strategy,
                session_timeout,
                no_wait,
            } => {
                let start = match (start, from_beginning, offset, from_timestamp) {
                    (Some(start), ..) => start,
                    (_, true, _, _) => StartAt::Beginning,
                    (_, _, Some(o), _) => StartAt::Offset(o),
                    (_, _, _, Some(t)) => StartAt::Timestamp(t),
                    _ => StartAt::End,
                };
                let options = ConsumeOptions {
                    topics,
                    start,
                    partition,
                    max_messages,
                    timeout,
                    window_bytes: window,
                    format,
                    encoding,
                    exit_at_end,
                    group,
                    strategy,
                    session_timeout,
                    wait_for_topic: !no_wait,
                    tags,
                };
                cli::consume(cluster, options).await
            }
            Command::Cluster { command: ClusterCommand::Status { format } } => {
                cli::cluster_status(cluster, format).await
            }
            Command::Group { command: GroupCommand::List } => cli::group_list(cluster).await,
            Command::Group { command: GroupCommand::Delete { group } } => cli::group_delete(cluster, &group).await,
            Command::Group { command: GroupCommand::Describe { group, topic, format } } => {
                cli::group_describe(cluster, &group, topic.as_deref(), format).await
            }
            Command::Group { command: GroupCommand::Reset { group, topic, to, dry_run } } => {
                cli::group_reset(cluster, &group, &topic, to, dry_run).await
            }
            Command::Group { command: GroupCommand::Alter { group, max_deliveries } } => {
                cli::group_alter(cluster, &group, max_deliveries).await
            }
            Command::Group { command: GroupCommand::Redrive { group, dead_letter_topic, max } } => {
                cli::group_redrive(cluster, &group, dead_letter_topic, max).await
            }
            Command::Broker { command: BrokerCommand::Decommission { id } } => {
                cli::broker_decommission(cluster, id, false).await
            }
            Command::Broker { command: BrokerCommand::Recommission { id } } => {
                cli::broker_decommission(cluster, id, true).await
            }
            Command::User { command } => cli::user(cluster, command).await,
            Command::Acl { command } => cli::acl(cluster, command).await,
            Command::Profile { .. } | Command::Storage { .. } | Command::Etcd(_) | Command::Bench(_) => {
                unreachable!("handled by main")
            }
        }
    })
}

/// The profile named, or the current one (`None`: no profile in use).
fn selected_profile(name: Option<&str>) -> anyhow::Result<Option<goulette_cli::profile::Profile>> {
    let path = match goulette_cli::profile::default_path() {
        Ok(path) => path,
        // No configuration directory: no profile, unless one was named.
        Err(e) if name.is_some() => return Err(e),
        Err(_) => return Ok(None),
    };
    let profiles = goulette_cli::profile::Profiles::load(&path)?;
    Ok(profiles.selected(name)?.map(|(_, p)| p.clone()))
}

/// `goulette profile …`.
fn profile_command(
    sentinels: Option<Vec<String>>,
    (tls_ca, tls_cert, tls_key): (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>),
    user: Option<String>,
    command: ProfileCommand,
) -> anyhow::Result<()> {
    use goulette_cli::profile::{Profile, Profiles, default_path};
    let path = default_path()?;
    let mut profiles = Profiles::load(&path)?;
    match command {
        ProfileCommand::Create { name, etcd_endpoints, make_current } => {
            let Some(sentinels) = sentinels else {
                anyhow::bail!("give the profile's sentinels: goulette profile create {name} --sentinels HOST:PORT,...")
            };
            // Checked (and URLs accepted) as for any command, when used.
            let sentinels = sentinels.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
            // Kept as absolute paths: the profile is used from any directory.
            let absolute = |p: Option<PathBuf>| p.map(|p| std::path::absolute(&p).unwrap_or(p));
            let profile = Profile {
                sentinels,
                etcd_endpoints,
                tls_ca: absolute(tls_ca),
                tls_cert: absolute(tls_cert),
                tls_key: absolute(tls_key),
                user,
            };
            profiles.profiles.insert(name.clone(), profile);
            if make_current || profiles.current.is_none() {
                profiles.current = Some(name.clone());
            }
            profiles.save(&path)?;
            println!(
                "profile {name} saved in {}{}",
                path.display(),
                if profiles.current.as_deref() == Some(&name) { " (current)" } else { "" }
            );
        }
        ProfileCommand::Use { name } => {
            if !profiles.profiles.contains_key(&name) {
                anyhow::bail!("no profile {name:?} (goulette profile list shows them)");
            }
            profiles.current = Some(name.clone());
            profiles.save(&path)?;
            println!("profile {name} is current");
        }
        ProfileCommand::List => print!("{}", profiles.listing()),
        ProfileCommand::Delete { name } => {
            if profiles.profiles.remove(&name).is_none() {
                anyhow::bail!("no profile {name:?} (goulette profile list shows them)");
            }
            if profiles.current.as_deref() == Some(&name) {
                profiles.current = None;
            }
            profiles.save(&path)?;
            println!("profile {name} deleted");
        }
    }
    Ok(())
}

fn etcd(args: EtcdArgs, profile_endpoints: Vec<String>) -> anyhow::Result<()> {
    if let Some(tls) = args.etcd_tls.client_tls().map_err(|e| anyhow::anyhow!("etcd TLS: {e}"))? {
        goulette_sentinel::store::use_etcd_tls(tls).map_err(anyhow::Error::msg)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Lives until the command is done, then stops its etcd.
        let temporary = match &args.etcd_data_dir {
            Some(data_dir) => Some(
                goulette_cli::etcd_admin::TemporaryEtcd::start(&goulette_cli::etcd_admin::OfflineEtcd {
                    data_dir: data_dir.clone(),
                    name: args.etcd_name.clone(),
                    peer_port: args.etcd_peer_port.unwrap_or(0),
                })
                .await?,
            ),
            None => None,
        };
        let endpoints = match &temporary {
            Some(etcd) => vec![etcd.endpoint().to_owned()],
            None => args.etcd_endpoints.unwrap_or_else(|| match profile_endpoints.is_empty() {
                true => vec!["http://127.0.0.1:2379".to_owned()],
                false => profile_endpoints,
            }),
        };
        let target = EtcdTarget::new(endpoints, &args.etcd_prefix)?;
        let admin = EtcdAdmin::connect(&target).await?;
        match args.command {
            EtcdCommand::Status => {
                let status = admin.status().await?;
                print!("{}", status.report);
                if !status.down.is_empty() {
                    anyhow::bail!("not healthy: {}", status.down.join(", "));
                }
            }
            EtcdCommand::Topics => print!("{}", admin.topics().await?),
            EtcdCommand::Ops { last } => print!("{}", admin.ops(last).await?),
            EtcdCommand::Backup { file } => {
                let report = admin.backup(&file).await?;
                println!(
                    "wrote {} keys of {} (revision {}) to {}; left out {} lease-bound keys",
                    report.keys,
                    target.keys().root(),
                    report.revision,
                    file.display(),
                    report.skipped
                );
            }
            EtcdCommand::Restore { file } => {
                let report = admin.restore(&file).await?;
                println!(
                    "restored {} keys into {} from {}; transactions: {}",
                    report.keys,
                    target.keys().root(),
                    file.display(),
                    report.transactions
                );
            }
            EtcdCommand::Clean { yes } => {
                let deleted = admin.clean(yes).await?;
                println!("deleted {deleted} keys under {}", target.keys().root());
            }
        }
        Ok(())
    })
}
