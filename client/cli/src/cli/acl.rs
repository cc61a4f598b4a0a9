//! `goulette acl add|list|remove`: ACL bindings in Kafka's model
//! (docs/security.md). `add` and `remove` name one resource and one or
//! more operations; `list` filters by any of them.

use std::sync::Arc;

use clap::Subcommand;
use goulette_auth::acl::model::CLUSTER_NAME;
use goulette_auth::acl::{AclBinding, AclFilter, Operation, PatternFilter, PatternType, Permission, ResourceType};
use goulette_client::admin::Admin;
use goulette_client::cluster::Cluster;
use goulette_proto::v1 as pb;

use super::Format;

/// Which resource a command is about.
#[derive(Debug, Clone, clap::Args)]
#[group(multiple = false)]
pub struct ResourceArgs {
    /// A topic (`*`: every topic).
    #[arg(long)]
    topic: Option<String>,
    /// A consumer group (`*`: every group).
    #[arg(long)]
    group: Option<String>,
    /// The cluster (topic creation, users, ACLs, cluster status).
    #[arg(long)]
    cluster: bool,
    /// A transactional id.
    #[arg(long)]
    transactional_id: Option<String>,
}

impl ResourceArgs {
    fn resource(&self) -> Option<(ResourceType, String)> {
        match self {
            ResourceArgs { topic: Some(t), .. } => Some((ResourceType::Topic, t.clone())),
            ResourceArgs { group: Some(g), .. } => Some((ResourceType::Group, g.clone())),
            ResourceArgs { transactional_id: Some(t), .. } => Some((ResourceType::TransactionalId, t.clone())),
            ResourceArgs { cluster: true, .. } => Some((ResourceType::Cluster, CLUSTER_NAME.to_owned())),
            _ => None,
        }
    }
}

/// A binding, as `add` and `remove` take it.
#[derive(Debug, Clone, clap::Args)]
pub struct BindingArgs {
    /// Whom it is for: `User:NAME`, or `User:*` for every user.
    #[arg(long)]
    principal: String,
    /// The operations (comma-separated): read, write, create, delete, alter,
    /// describe, cluster-action, describe-configs, alter-configs,
    /// idempotent-write, all.
    #[arg(long, value_delimiter = ',', required = true, value_parser = parse_operation)]
    operation: Vec<Operation>,
    #[command(flatten)]
    resource: ResourceArgs,
    /// The name is a prefix: every resource whose name starts with it.
    #[arg(long)]
    prefixed: bool,
    /// Forbid instead of allow (a DENY wins over any ALLOW).
    #[arg(long)]
    deny: bool,
    /// Only from this IP address (default: any).
    #[arg(long, default_value = "*")]
    host: String,
}

fn parse_operation(s: &str) -> Result<Operation, String> {
    Operation::parse(s)
        .ok_or_else(|| format!("{s:?}: not an operation (read, write, create, delete, alter, describe, …)"))
}

impl BindingArgs {
    fn bindings(&self) -> anyhow::Result<Vec<AclBinding>> {
        let Some((resource_type, name)) = self.resource.resource() else {
            anyhow::bail!("name the resource: --topic NAME, --group NAME, --transactional-id NAME or --cluster");
        };
        self.operation
            .iter()
            .map(|&operation| {
                let b = AclBinding {
                    resource_type,
                    name: name.clone(),
                    pattern: if self.prefixed { PatternType::Prefixed } else { PatternType::Literal },
                    principal: self.principal.clone(),
                    host: self.host.clone(),
                    operation,
                    permission: if self.deny { Permission::Deny } else { Permission::Allow },
                };
                b.check().map_err(anyhow::Error::msg)?;
                Ok(b)
            })
            .collect()
    }
}

/// `goulette acl …`.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add bindings (one per operation). Every broker enforces them once this returns.
    Add {
        #[command(flatten)]
        binding: BindingArgs,
    },
    /// Remove exactly these bindings.
    Remove {
        #[command(flatten)]
        binding: BindingArgs,
    },
    /// Bindings, filtered by principal and resource (all by default).
    List {
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        resource: ResourceArgs,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs an `acl` command.
pub async fn acl(cluster: Arc<Cluster>, command: AclCommand) -> anyhow::Result<bool> {
    let admin = Admin::new(cluster);
    match command {
        AclCommand::Add { binding } => {
            let bindings = binding.bindings()?;
            let answer = admin.create_acls(bindings.iter().map(pb::AclBinding::from).collect()).await?;
            for b in &bindings {
                println!("added: {b}");
            }
            Ok(all_applied(&answer.lagging_brokers))
        }
        AclCommand::Remove { binding } => {
            let filters = binding.bindings()?.iter().map(|b| pb::AclFilter::from(&exactly(b))).collect();
            let answer = admin.delete_acls(filters).await?;
            if answer.deleted.is_empty() {
                anyhow::bail!("no such binding (see `goulette acl list`)");
            }
            for b in answer.deleted.iter().filter_map(|b| AclBinding::try_from(b).ok()) {
                println!("removed: {b}");
            }
            Ok(all_applied(&answer.lagging_brokers))
        }
        AclCommand::List { principal, resource, format } => {
            let (resource_type, name) = resource.resource().unzip();
            let filter = AclFilter { principal, resource_type, name, ..AclFilter::any() };
            let listed = admin.describe_acls(pb::AclFilter::from(&filter)).await?;
            let mut bindings: Vec<AclBinding> = listed.iter().filter_map(|b| AclBinding::try_from(b).ok()).collect();
            bindings.sort();
            match format {
                Format::Text => bindings.iter().for_each(|b| println!("{b}")),
                Format::Json => {
                    let list: Vec<serde_json::Value> = bindings
                        .iter()
                        .map(|b| {
                            serde_json::json!({"principal": b.principal, "permission": b.permission.name(),
                                "operation": b.operation.name(), "resource_type": b.resource_type.name(),
                                "pattern": b.pattern.name(), "name": b.name, "host": b.host})
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&list)?);
                }
            }
            Ok(true)
        }
    }
}

/// The filter selecting exactly `b`.
fn exactly(b: &AclBinding) -> AclFilter {
    AclFilter {
        resource_type: Some(b.resource_type),
        name: Some(b.name.clone()),
        pattern: PatternFilter::Exactly(b.pattern),
        principal: Some(b.principal.clone()),
        host: Some(b.host.clone()),
        operation: Some(b.operation),
        permission: Some(b.permission),
    }
}

fn all_applied(lagging: &[u32]) -> bool {
    if !lagging.is_empty() {
        eprintln!("brokers {lagging:?} had not applied the change yet (they will once they reach a sentinel)");
    }
    lagging.is_empty()
}
