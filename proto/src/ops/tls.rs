//! The TLS flags of both servers' gRPC listener (`--tls-*`), and of
//! connections to etcd (`--etcd-tls-*`, sentinels and the CLI), flattened
//! into each program's arguments.

use std::path::PathBuf;

/// How a server's gRPC listener and its own gRPC connections are secured.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct TlsArgs {
    /// Serve the gRPC listener over TLS only, with this certificate chain
    /// (PEM); needs --tls-key and --tls-ca. Watched: renewed files are used
    /// by new connections within seconds, open ones are not cut.
    #[arg(long, env = "GOULETTE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "GOULETTE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Require clients and the other servers to present a certificate
    /// signed by one of these CAs (PEM): mutual TLS.
    #[arg(long, env = "GOULETTE_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Connect to the other servers over TLS, trusting these CAs (PEM),
    /// presenting --tls-cert to those that ask for one. A cluster's gRPC is
    /// TLS everywhere or nowhere.
    #[arg(long, env = "GOULETTE_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// Makes this process's gRPC connections TLS when `tls_ca` is set
/// (`--tls-ca`), presenting the listener's certificate (`listener`) to the
/// servers that ask for one. Both servers call it before they serve.
pub fn use_client_tls(
    tls_ca: Option<&std::path::Path>,
    listener: Option<&goulette_tls::TlsFiles>,
) -> Result<(), String> {
    let Some(ca) = tls_ca else { return Ok(()) };
    let (cert, key) = (listener.map(|f| f.cert.as_path()), listener.map(|f| f.key.as_path()));
    let tls = crate::channel::ClientTls::from_files(ca, cert, key).map_err(|e| format!("--tls-ca: {e}"))?;
    crate::channel::use_tls(tls)
}

impl TlsArgs {
    /// The listener's files (None: plaintext); both of cert and key or
    /// neither, a client CA only with them.
    pub fn listener(&self) -> Result<Option<goulette_tls::TlsFiles>, String> {
        goulette_tls::reload::files_from_flags(
            self.tls_cert.clone(),
            self.tls_key.clone(),
            self.tls_client_ca.clone(),
            "tls",
        )
    }
}

/// How a process reaches an etcd that requires TLS (`--etcd-tls-*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct EtcdTlsArgs {
    /// Connect to etcd over TLS, trusting these CAs (PEM); give the
    /// endpoints as https:// URLs.
    #[arg(long, global = true, env = "GOULETTE_ETCD_TLS_CA", value_name = "FILE")]
    pub etcd_tls_ca: Option<PathBuf>,
    /// Certificate (PEM) to present to an etcd with --client-cert-auth (with --etcd-tls-key).
    #[arg(long, global = true, env = "GOULETTE_ETCD_TLS_CERT", value_name = "FILE")]
    pub etcd_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --etcd-tls-cert.
    #[arg(long, global = true, env = "GOULETTE_ETCD_TLS_KEY", value_name = "FILE")]
    pub etcd_tls_key: Option<PathBuf>,
}

impl EtcdTlsArgs {
    /// The TLS of etcd connections, read from the files (None: plaintext).
    pub fn client_tls(&self) -> Result<Option<crate::channel::ClientTls>, String> {
        match &self.etcd_tls_ca {
            None if self.etcd_tls_cert.is_some() || self.etcd_tls_key.is_some() => {
                Err("--etcd-tls-cert and --etcd-tls-key need --etcd-tls-ca".into())
            }
            None => Ok(None),
            Some(ca) => {
                crate::channel::ClientTls::from_files(ca, self.etcd_tls_cert.as_deref(), self.etcd_tls_key.as_deref())
                    .map(Some)
            }
        }
    }
}
