//! What orc keeps private on a shared machine: directories only their owner can enter,
//! files only their owner can read, checks of both before they are trusted, and the
//! secrets and signatures that guard databases and job agents.
//!
//! Every check refuses a path that belongs to another user or that others could change,
//! with an [`orc_core::Error::Insecure`] that says what to do.
//!
//! # Example
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let state = dir.path().join("state");
//! orc_secure::private_dir(&state)?;
//! let file = state.join("secret");
//! let secret = orc_secure::random_secret();
//! orc_secure::write_private(&file, secret.as_bytes())?;
//! assert_eq!(orc_secure::read_private(&file, 1024)?, secret.as_bytes());
//! let tag = orc_secure::sign(secret.as_bytes(), b"launch step 1");
//! assert!(orc_secure::verify(secret.as_bytes(), b"launch step 1", &tag));
//! assert!(!orc_secure::verify(secret.as_bytes(), b"launch step 2", &tag));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod files;
mod secrets;
#[cfg(feature = "tls")]
pub mod tls;

pub use files::{
    check_private_dir, check_private_file, create_private, euid, private_dir, read_private,
    write_private,
};
pub use secrets::{random_secret, sha256_hex, sign, verify};
