//! The session token in the operating system's keychain, one entry per server.
//!
//! Built on the keyring 4 ecosystem (`keyring-core` with explicitly chosen stores), never
//! on its mock: on Linux the Secret Service (GNOME Keyring, KWallet, KeePassXC…) over
//! D-Bus when one answers, otherwise the kernel keyring (keyutils, in memory, gone after a
//! reboot). `CHATAPP_KEYCHAIN=secret-service|kernel` forces one. Nothing here writes a
//! file; the token is never logged.

use std::fmt;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};

/// The keychain service name under which every ChatApp token is kept.
pub const SERVICE: &str = "chatapp";

/// Which store holds the tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The freedesktop Secret Service over the D-Bus session bus.
    SecretService,
    /// The Linux kernel keyring (keyutils), session keyring.
    Kernel,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::SecretService => "Secret Service",
            Backend::Kernel => "kernel keyring",
        })
    }
}

/// Why the keychain could not be used. The `Display` texts are shown to people as they are.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error(
        "No keychain is available to keep you signed in ({0}). Start your desktop's keyring (for example GNOME Keyring) and try again."
    )]
    Unavailable(String),
    #[error(
        "The keychain is locked. Unlock it (your desktop usually asks for your login password) and try again."
    )]
    Locked,
    #[error("The keychain refused the request: {0}")]
    Failed(String),
}

/// A handle on the chosen store.
#[derive(Clone)]
pub struct Keychain {
    store: Arc<CredentialStore>,
    backend: Backend,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Keychain {
    /// The platform's keychain: `CHATAPP_KEYCHAIN` when set, otherwise the Secret Service
    /// when one answers on the session bus, otherwise the kernel keyring.
    pub fn open() -> Result<Self, KeychainError> {
        match std::env::var("CHATAPP_KEYCHAIN").as_deref() {
            Ok("secret-service") => Self::open_backend(Backend::SecretService),
            Ok("kernel") => Self::open_backend(Backend::Kernel),
            Ok(other) if !other.is_empty() => Err(KeychainError::Unavailable(format!(
                "CHATAPP_KEYCHAIN={other} is neither secret-service nor kernel"
            ))),
            _ => Self::open_backend(Backend::SecretService).or_else(|ss| {
                tracing::info!(error = %ss, "no Secret Service; using the kernel keyring");
                Self::open_backend(Backend::Kernel)
            }),
        }
    }

    /// One store, explicitly.
    pub fn open_backend(backend: Backend) -> Result<Self, KeychainError> {
        let store = platform_store(backend)?;
        Ok(Self { store, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn entry(&self, server: &str) -> Result<Entry, KeychainError> {
        Entry::new_in_store(&self.store, SERVICE, server).map_err(map_error)
    }

    /// Keeps (or replaces) the token for `server`.
    pub fn save_token(&self, server: &str, token: &str) -> Result<(), KeychainError> {
        self.entry(server)?.set_password(token).map_err(map_error)
    }

    /// The token kept for `server`, if any.
    pub fn token(&self, server: &str) -> Result<Option<String>, KeychainError> {
        match self.entry(server)?.get_password() {
            Ok(t) => Ok(Some(t)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    /// Forgets the token for `server`; forgetting one that is not there is fine.
    pub fn delete_token(&self, server: &str) -> Result<(), KeychainError> {
        match self.entry(server)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }
}

#[cfg(target_os = "linux")]
fn platform_store(backend: Backend) -> Result<Arc<CredentialStore>, KeychainError> {
    match backend {
        Backend::SecretService => {
            // Connecting opens a session with the Secret Service: this fails when none runs.
            let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()
                .map_err(|e| KeychainError::Unavailable(format!("Secret Service: {e}")))?;
            Ok(store)
        }
        Backend::Kernel => {
            let store: Arc<CredentialStore> = linux_keyutils_keyring_store::Store::new()
                .map_err(|e| KeychainError::Unavailable(format!("kernel keyring: {e}")))?;
            Ok(store)
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn platform_store(backend: Backend) -> Result<Arc<CredentialStore>, KeychainError> {
    Err(KeychainError::Unavailable(format!(
        "{backend} is only built on Linux so far"
    )))
}

fn map_error(e: keyring_core::Error) -> KeychainError {
    use keyring_core::Error as E;
    match e {
        E::NoStorageAccess(_) => KeychainError::Locked,
        E::NoDefaultStore => KeychainError::Unavailable("no store".into()),
        E::PlatformFailure(inner) => {
            let text = inner.to_string();
            if text.to_ascii_lowercase().contains("locked") {
                KeychainError::Locked
            } else {
                KeychainError::Failed(text)
            }
        }
        other => KeychainError::Failed(other.to_string()),
    }
}
