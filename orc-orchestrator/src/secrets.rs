//! The secrets of a protected database: its admin user's (for orc) and, in password mode,
//! the one every client gives. Both live in the orchestrator's directory under the state
//! directory, readable by their owner only.

use std::path::{Path, PathBuf};

use orc_core::{Auth, Credentials, Error, Result, settings::env_suffix};
use serde::{Deserialize, Serialize};

/// The admin user every protected database has.
pub const ADMIN_USER: &str = "orc-admin";
/// The file holding the admin secret (and the client password), inside the orchestrator's
/// directory.
pub const SECRET_FILE: &str = "secret.json";
/// The file holding only the client password (for `SR_PASSWORD_FILE`), in password mode.
pub const CLIENT_PASSWORD_FILE: &str = "client-password";

/// The longest secret file read back.
const MAX_SECRET_FILE: u64 = 4096;

#[derive(Serialize, Deserialize)]
struct SecretFile {
    admin_user: String,
    admin_secret: String,
    #[serde(default)]
    client_password: Option<String>,
}

/// Generate and store fresh credentials for a database in `dir` (its orchestrator
/// directory); `None` for an open database.
pub(crate) fn create(dir: &Path, auth: Auth) -> Result<Option<Credentials>> {
    remove(dir);
    let mut c = match auth {
        Auth::Open => return Ok(None),
        _ => Credentials::new(ADMIN_USER, orc_secure::random_secret()),
    };
    if auth == Auth::Password {
        let pw = orc_secure::random_secret();
        orc_secure::write_private(&dir.join(CLIENT_PASSWORD_FILE), pw.as_bytes())?;
        c = c.with_client_password(pw);
    }
    let file = SecretFile {
        admin_user: c.admin_user.clone(),
        admin_secret: c.admin_secret.clone(),
        client_password: c.client_password.clone(),
    };
    let json = serde_json::to_vec(&file).map_err(|e| Error::Format {
        context: "serialising the secret file".into(),
        message: e.to_string(),
    })?;
    orc_secure::write_private(&dir.join(SECRET_FILE), &json)?;
    Ok(Some(c))
}

/// The stored credentials of a database in `dir`; `None` for an open database.
pub(crate) fn load(dir: &Path, auth: Auth) -> Result<Option<Credentials>> {
    if auth == Auth::Open {
        return Ok(None);
    }
    let path = dir.join(SECRET_FILE);
    let bytes = orc_secure::read_private(&path, MAX_SECRET_FILE)?;
    let f: SecretFile = serde_json::from_slice(&bytes).map_err(|e| Error::Format {
        context: format!("secret file {}", path.display()),
        message: e.to_string(),
    })?;
    let mut c = Credentials::new(f.admin_user, f.admin_secret);
    if let Some(p) = f.client_password {
        c = c.with_client_password(p);
    }
    Ok(Some(c))
}

/// The directory generated TLS certificates and their key live in, inside the
/// orchestrator's directory.
pub const TLS_DIR: &str = "tls";

/// Remove the secret files in `dir` (after a stop), generated TLS keys included.
pub(crate) fn remove(dir: &Path) {
    for f in [SECRET_FILE, CLIENT_PASSWORD_FILE] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let _ = std::fs::remove_dir_all(dir.join(TLS_DIR));
}

/// The environment a client of a password-protected database needs besides its address:
/// `SR_PASSWORD_FILE<suffix>` naming the client password file.
pub(crate) fn client_env(dir: &Path, db_identifier: &str) -> (String, PathBuf) {
    (
        format!("SR_PASSWORD_FILE{}", env_suffix(db_identifier)),
        dir.join(CLIENT_PASSWORD_FILE),
    )
}
