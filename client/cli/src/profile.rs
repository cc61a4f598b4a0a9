//! Connection profiles: named sets of sentinel (and etcd) addresses, one of
//! them current, so that users do not export `GOULETTE_SENTINELS` in every
//! shell (`goulette profile create|use|list|delete`).
//!
//! Stored in `profiles.toml` in the user's configuration directory:
//! `$GOULETTE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/goulette`, else
//! `~/.config/goulette`. Written whole to a temporary file and renamed, so
//! a crash never leaves half a file. Which addresses a command uses, first
//! found wins: the `--sentinels` flag (or `GOULETTE_SENTINELS`), the
//! profile named by `--profile` (or `GOULETTE_PROFILE`), the current
//! profile, then `127.0.0.1:50052`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a cluster is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Profile {
    /// Sentinel addresses, `host:port`.
    pub sentinels: Vec<String>,
    /// etcd client URLs (for `goulette etcd`); empty: the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub etcd_endpoints: Vec<String>,
    /// CAs to trust (PEM) when the cluster's gRPC uses TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Certificate and key (PEM) to present to a cluster with mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// The user to log in as (its password comes from GOULETTE_PASSWORD,
    /// never from this file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Every profile, and which one is current.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    /// The profile used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The profiles file of this user.
pub fn default_path() -> anyhow::Result<PathBuf> {
    let dir = match (std::env::var_os("GOULETTE_CONFIG_DIR"), std::env::var_os("XDG_CONFIG_HOME")) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(config)) if !config.is_empty() => PathBuf::from(config).join("goulette"),
        _ => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".config").join("goulette"),
            None => anyhow::bail!("no configuration directory: set HOME, XDG_CONFIG_HOME or GOULETTE_CONFIG_DIR"),
        },
    };
    Ok(dir.join("profiles.toml"))
}

impl Profiles {
    /// Reads `path`; a missing file is no profile.
    pub fn load(path: &Path) -> anyhow::Result<Profiles> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profiles::default()),
            Err(e) => Err(anyhow::anyhow!("read {}: {e}", path.display())),
        }
    }

    /// Writes `path` whole (temporary file, then rename).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("create {}: {e}", dir.display()))?;
        }
        let text = toml::to_string(self)?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("rename {} to {}: {e}", tmp.display(), path.display()))
    }

    /// The profile `name`, or else the current one (`None`: no profile in use).
    pub fn selected(&self, name: Option<&str>) -> anyhow::Result<Option<(&str, &Profile)>> {
        let Some(name) = name.or(self.current.as_deref()) else { return Ok(None) };
        match self.profiles.get_key_value(name) {
            Some((name, profile)) => Ok(Some((name, profile))),
            None => anyhow::bail!("no profile {name:?} (goulette profile list shows them)"),
        }
    }

    /// The listing of `profile list`: one line per profile, `*` on the current one.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for (name, p) in &self.profiles {
            let mark = if self.current.as_deref() == Some(name) { '*' } else { ' ' };
            out.push_str(&format!("{mark} {name}  sentinels {}", p.sentinels.join(",")));
            if !p.etcd_endpoints.is_empty() {
                out.push_str(&format!("  etcd {}", p.etcd_endpoints.join(",")));
            }
            if let Some(ca) = &p.tls_ca {
                out.push_str(&format!("  tls-ca {}", ca.display()));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_and_the_current_one_is_selected_unless_another_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("profiles.toml");
        assert_eq!(Profiles::load(&path).unwrap(), Profiles::default());
        let mut p = Profiles::default();
        p.profiles.insert("prod".into(), Profile { sentinels: vec!["10.0.0.1:50052".into()], ..Profile::default() });
        p.profiles.insert(
            "dev".into(),
            Profile {
                sentinels: vec!["127.0.0.1:50052".into()],
                etcd_endpoints: vec!["http://127.0.0.1:2379".into()],
                ..Profile::default()
            },
        );
        p.current = Some("prod".into());
        p.save(&path).unwrap();
        let loaded = Profiles::load(&path).unwrap();
        assert_eq!(loaded, p);
        assert_eq!(loaded.selected(None).unwrap().unwrap().0, "prod");
        assert_eq!(loaded.selected(Some("dev")).unwrap().unwrap().1.etcd_endpoints.len(), 1);
        assert!(loaded.selected(Some("nope")).is_err());
        assert_eq!(
            loaded.listing(),
            "  dev  sentinels 127.0.0.1:50052  etcd http://127.0.0.1:2379\n* prod  sentinels 10.0.0.1:50052\n"
        );
    }
}
