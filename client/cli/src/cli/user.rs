//! `goulette user create|passwd|delete|list`: users and their SCRAM
//! credentials. The credential (salt, stored and server keys) is made
//! here from the password, so the password never leaves this process.

use std::io::BufRead;
use std::sync::Arc;

use clap::Subcommand;
use goulette_auth::{DEFAULT_ITERATIONS, Mechanism, ScramCredential};
use goulette_client::admin::Admin;
use goulette_client::cluster::Cluster;
use goulette_proto::v1 as pb;

use super::Format;

/// How the password is given, and which credentials are made from it.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswordArgs {
    /// The user's password (visible to other local users in the process
    /// list: prefer the environment variable, or standard input, its first
    /// line, which is read when neither is set). Not --password, which is
    /// the password this command logs in with.
    #[arg(long = "user-password", env = "GOULETTE_USER_PASSWORD", hide_env_values = true)]
    user_password: Option<String>,
    /// The SCRAM mechanisms to make credentials for (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "SCRAM-SHA-256,SCRAM-SHA-512", value_parser = parse_mechanism)]
    mechanisms: Vec<Mechanism>,
    /// PBKDF2 iterations of each credential (4096 to 16384).
    #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
    iterations: u32,
}

fn parse_mechanism(s: &str) -> Result<Mechanism, String> {
    Mechanism::parse(s).ok_or_else(|| format!("{s:?}: expected SCRAM-SHA-256 or SCRAM-SHA-512"))
}

/// `goulette user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with SCRAM credentials (both mechanisms by default).
    /// Every broker accepts its login once this returns.
    Create {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Change an existing user's password (new salts, new credentials).
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Delete a user and its credentials; its logins are refused once this returns.
    Delete { name: String },
    /// Users and their mechanisms (never a key).
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs a `user` command.
pub async fn user(cluster: Arc<Cluster>, command: UserCommand) -> anyhow::Result<bool> {
    let admin = Admin::new(cluster);
    let (req, done) = match command {
        UserCommand::List { format } => return user_list(&admin, format).await,
        UserCommand::Create { name, password } => {
            let upserts = credentials(&password)?;
            (pb::AlterUserRequest { name, upserts, create_only: true, ..Default::default() }, "created")
        }
        UserCommand::Passwd { name, password } => {
            let upserts = credentials(&password)?;
            (pb::AlterUserRequest { name, upserts, must_exist: true, ..Default::default() }, "changed")
        }
        UserCommand::Delete { name } => {
            (pb::AlterUserRequest { name, delete_user: true, ..Default::default() }, "deleted")
        }
    };
    let name = req.name.clone();
    let answer = admin.alter_user(req).await?;
    if answer.lagging_brokers.is_empty() {
        println!("user {name} {done}");
        Ok(true)
    } else {
        eprintln!(
            "user {name} {done}, but brokers {:?} had not applied it yet (they will once they reach a sentinel)",
            answer.lagging_brokers
        );
        Ok(false)
    }
}

/// The credentials `args` asks for, from the password.
fn credentials(args: &PasswordArgs) -> anyhow::Result<Vec<pb::ScramCredential>> {
    let password = match &args.user_password {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if password.is_empty() {
        anyhow::bail!(
            "the password is empty (give it with --user-password, GOULETTE_USER_PASSWORD or on standard input)"
        );
    }
    let mut mechanisms = args.mechanisms.clone();
    mechanisms.sort();
    mechanisms.dedup();
    mechanisms
        .into_iter()
        .map(|m| Ok(pb::ScramCredential::from(&ScramCredential::new(m, &password, args.iterations)?)))
        .collect()
}

async fn user_list(admin: &Admin, format: Format) -> anyhow::Result<bool> {
    let users = admin.list_users().await?;
    let mechanisms = |u: &pb::UserInfo| -> Vec<(String, u32)> {
        u.credentials
            .iter()
            .map(|c| {
                let name = goulette_auth::proto::mechanism_from_proto(c.mechanism)
                    .map(|m| m.name().to_owned())
                    .unwrap_or_else(|_| format!("mechanism {}", c.mechanism));
                (name, c.iterations)
            })
            .collect()
    };
    match format {
        Format::Json => {
            let list: Vec<serde_json::Value> = users
                .iter()
                .map(|u| {
                    let creds: Vec<serde_json::Value> = mechanisms(u)
                        .into_iter()
                        .map(|(m, i)| serde_json::json!({"mechanism": m, "iterations": i}))
                        .collect();
                    serde_json::json!({"name": u.name, "credentials": creds})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Text => {
            for u in &users {
                let creds: Vec<String> =
                    mechanisms(u).into_iter().map(|(m, i)| format!("{m} ({i} iterations)")).collect();
                println!("{}  {}", u.name, creds.join(", "));
            }
        }
    }
    Ok(true)
}
