//! The session token in the operating system's keychain, one entry per server.
//!
//! Built on the keyring 4 ecosystem (`keyring-core` with explicitly chosen stores), never
//! on its mock: on Linux the Secret Service (GNOME Keyring, KWallet, KeePassXC…) over
//! D-Bus when one answers, otherwise the kernel keyring (keyutils, in memory, gone after a
//! reboot); `CHATAPP_KEYCHAIN=secret-service|kernel` forces one. On macOS the login
//! Keychain, on Windows the Credential Manager. Nothing here writes a file; the token is
//! never logged.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
    /// The macOS Keychain or the Windows Credential Manager.
    Native,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::SecretService => "Secret Service",
            Backend::Kernel => "kernel keyring",
            Backend::Native if cfg!(windows) => "Windows Credential Manager",
            Backend::Native => "macOS Keychain",
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
    #[error(
        "The keychain did not answer. If it asks for your password to unlock it, unlock it and try again."
    )]
    NotAnswering,
    #[error("The keychain refused the request: {0}")]
    Failed(String),
}

/// How long a keychain call may take before the app stops waiting (a locked keychain
/// may be showing its unlock dialog). `CHATAPP_KEYCHAIN_WAIT_SECS` overrides it.
pub const WAIT: Duration = Duration::from_secs(120);

fn wait_limit() -> Duration {
    std::env::var("CHATAPP_KEYCHAIN_WAIT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(WAIT)
}

/// A handle on the chosen store.
#[derive(Clone)]
pub struct Keychain {
    store: Arc<CredentialStore>,
    backend: Backend,
    /// Set when a call did not come back in time: the store may still be waiting on it
    /// (the Secret Service store keeps its connection locked meanwhile), so the app opens
    /// a fresh one for the next call.
    stuck: Arc<AtomicBool>,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Keychain {
    /// The platform's keychain. On Linux: `CHATAPP_KEYCHAIN` when set, otherwise the
    /// Secret Service when one answers on the session bus, otherwise the kernel keyring.
    pub fn open() -> Result<Self, KeychainError> {
        if !cfg!(target_os = "linux") {
            return Self::open_backend(Backend::Native);
        }
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
        Ok(Self {
            store,
            backend,
            stuck: Arc::default(),
        })
    }

    /// Whether a call on this handle never came back; open a new one.
    pub fn is_stuck(&self) -> bool {
        self.stuck.load(Ordering::Relaxed)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `op` on the entry for `server` on its own thread, waiting at most
    /// [`wait_limit`]: a locked keychain's unlock dialog must not hang the app.
    fn call<T: Send + 'static>(
        &self,
        server: &str,
        op: impl FnOnce(Entry) -> Result<T, keyring_core::Error> + Send + 'static,
    ) -> Result<T, KeychainError> {
        let entry = Entry::new_in_store(&self.store, SERVICE, server).map_err(map_error)?;
        match with_deadline(wait_limit(), move || op(entry)) {
            Some(r) => r.map_err(map_error),
            None => {
                self.stuck.store(true, Ordering::Relaxed);
                Err(KeychainError::NotAnswering)
            }
        }
    }

    /// Keeps (or replaces) the token for `server`.
    pub fn save_token(&self, server: &str, token: &str) -> Result<(), KeychainError> {
        let token = token.to_owned();
        self.call(server, move |e| e.set_password(&token))
    }

    /// The token kept for `server`, if any.
    pub fn token(&self, server: &str) -> Result<Option<String>, KeychainError> {
        self.call(server, |e| match e.get_password() {
            Ok(t) => Ok(Some(t)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        })
    }

    /// Forgets the token for `server`; forgetting one that is not there is fine.
    pub fn delete_token(&self, server: &str) -> Result<(), KeychainError> {
        self.call(server, |e| match e.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        })
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
        Backend::Native => Err(not_here(backend)),
    }
}

#[cfg(target_os = "macos")]
fn platform_store(backend: Backend) -> Result<Arc<CredentialStore>, KeychainError> {
    match backend {
        Backend::Native => {
            let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()
                .map_err(|e| KeychainError::Unavailable(format!("macOS Keychain: {e}")))?;
            Ok(store)
        }
        other => Err(not_here(other)),
    }
}

#[cfg(windows)]
fn platform_store(backend: Backend) -> Result<Arc<CredentialStore>, KeychainError> {
    match backend {
        Backend::Native => {
            let store: Arc<CredentialStore> =
                windows_native_keyring_store::Store::new().map_err(|e| {
                    KeychainError::Unavailable(format!("Windows Credential Manager: {e}"))
                })?;
            Ok(store)
        }
        other => Err(not_here(other)),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn platform_store(backend: Backend) -> Result<Arc<CredentialStore>, KeychainError> {
    Err(not_here(backend))
}

fn not_here(backend: Backend) -> KeychainError {
    KeychainError::Unavailable(format!("the {backend} is not on this system"))
}

/// Runs `op` on a thread of its own and waits for it at most `limit` (`None` after that;
/// the thread is left to finish or hang by itself).
fn with_deadline<T: Send + 'static>(
    limit: Duration,
    op: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keychain".into())
        .spawn(move || {
            let _ = tx.send(op());
        })
        .ok()?;
    rx.recv_timeout(limit).ok()
}

fn map_error(e: keyring_core::Error) -> KeychainError {
    use keyring_core::Error as E;
    match e {
        E::NoStorageAccess(inner) => no_access(inner),
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

/// The store could not be used: locked (its unlock prompt was dismissed or could not be
/// shown), or, for the Secret Service, there is no default keyring to keep anything in.
fn no_access(inner: Box<dyn std::error::Error + Send + Sync>) -> KeychainError {
    #[cfg(target_os = "linux")]
    if let Some(secret_service::Error::NoResult) = inner.downcast_ref::<secret_service::Error>() {
        return KeychainError::Unavailable(
            "the Secret Service has no default keyring; create one (for example “Login” in your keyring app)"
                .into(),
        );
    }
    let _ = inner;
    KeychainError::Locked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_does_not_come_back_is_given_up() {
        assert_eq!(with_deadline(Duration::from_secs(60), || 7), Some(7));
        // An operation blocked for good (as on an unanswered unlock dialog).
        let (_keep, never) = std::sync::mpsc::channel::<()>();
        let stuck = with_deadline(Duration::from_millis(100), move || never.recv().is_ok());
        assert_eq!(stuck, None);
    }
}
