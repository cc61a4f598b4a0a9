//! The TLS flags of both servers' gRPC listener (`--tls-*`), flattened
//! into each server's arguments.

use std::path::PathBuf;

/// How a server's gRPC listener and its own gRPC connections are secured.
#[derive(Debug, Clone, Default, clap::Args)]
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
