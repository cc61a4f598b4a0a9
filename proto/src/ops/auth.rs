//! The login flags both servers share (`--auth-*`), flattened into each
//! program's arguments: what a failed login costs, and how long a gRPC
//! token lives (sentinels issue them).

use std::time::Duration;

/// How a server treats logins.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AuthArgs {
    /// Require every gRPC call to be authenticated: by a token from a login
    /// (users), or by a client certificate signed by --tls-client-ca (the
    /// cluster's servers; internal services take only these). Needs
    /// --tls-cert and --tls-client-ca; client certificates become optional,
    /// so that users can log in instead.
    #[arg(long, env = "GOULETTE_AUTH_REQUIRED", default_value_t = false, action = clap::ArgAction::Set)]
    pub auth_required: bool,
    /// Check every request against the ACLs (`goulette acl`, Kafka's
    /// CreateAcls): a request no ALLOW covers is refused, a DENY always wins.
    /// Kafka requests always; gRPC requests with --auth-required (which
    /// tells the cluster's servers, allowed everything, from users).
    #[arg(long, env = "GOULETTE_ACL_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub acl_enabled: bool,
    /// Principals allowed everything whatever the ACLs (comma-separated,
    /// `User:admin`).
    #[arg(long, env = "GOULETTE_SUPER_USERS", value_delimiter = ',')]
    pub super_users: Vec<String>,
    /// Map client certificates to users: the first rule that finds a value
    /// names it (`User:VALUE`). A rule is a field (cn, san-dns, san-email,
    /// san-uri), or a field with a rewrite, `cn:/REGEX/REPLACEMENT/[L|U]`
    /// (docs/security.md). Without rules, a certificate signed by the
    /// client CA is one of the cluster's servers (allowed everything); with
    /// rules, servers are users too, so list theirs in --super-users.
    #[arg(long, env = "GOULETTE_TLS_PRINCIPAL_RULES", value_delimiter = ',')]
    pub tls_principal_rules: Vec<String>,
    /// How long the answer to a failed login waits (slows password guessing).
    #[arg(long, env = "GOULETTE_AUTH_FAILURE_DELAY", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub auth_failure_delay: Duration,
    /// Failed logins one client address may make in a minute; beyond, its
    /// logins are refused without being checked until the minute passes.
    #[arg(long, env = "GOULETTE_AUTH_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub auth_failures_per_minute: u32,
    /// How long a gRPC token issued by a login is good for (sentinels
    /// issue them; clients log in again before it ends).
    #[arg(long, env = "GOULETTE_AUTH_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub auth_token_ttl: Duration,
}

impl AuthArgs {
    /// Whether gRPC requests are checked against the ACLs.
    pub fn grpc_acls(&self) -> bool {
        self.acl_enabled && self.auth_required
    }

    /// Checks `--auth-required` against the listener's TLS files, and makes
    /// client certificates optional under it.
    pub fn apply_to(&self, tls: &mut Option<goulette_tls::TlsFiles>) -> Result<(), String> {
        if !self.auth_required {
            return Ok(());
        }
        match tls {
            Some(files) if files.client_ca.is_some() => {
                files.client_cert_optional = true;
                Ok(())
            }
            _ => Err("--auth-required needs --tls-cert, --tls-key and --tls-client-ca: servers authenticate each other by certificate".into()),
        }
    }
}

impl Default for AuthArgs {
    fn default() -> AuthArgs {
        AuthArgs {
            auth_required: false,
            acl_enabled: false,
            super_users: Vec::new(),
            tls_principal_rules: Vec::new(),
            auth_failure_delay: Duration::from_millis(500),
            auth_failures_per_minute: 10,
            auth_token_ttl: Duration::from_secs(3600),
        }
    }
}
