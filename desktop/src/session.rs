//! The app's one session: which server (kept in the config dir), the `chatapp-client`
//! API with its Bearer token (read from and written to the keychain, never handed to
//! the webview), and the realtime connection. Commands call this; it knows nothing of
//! windows.

use std::path::PathBuf;
use std::sync::Mutex;

use chatapp_client::{Api, ClientError, Realtime};
use serde::{Deserialize, Serialize};

use crate::address::{self, ServerSecurity};
use crate::keychain::{Keychain, KeychainError};

/// What the webview gets for a failed call: the shape of the web UI's `ApiError`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CallError {
    /// HTTP status; 0 when there was no answer (or the failure is local).
    pub status: u16,
    pub code: String,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl CallError {
    pub fn local(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: 0,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_signed_in() -> Self {
        Self {
            status: 401,
            code: "not_signed_in".into(),
            message: "Please sign in.".into(),
            retry_after: None,
        }
    }
}

impl From<ClientError> for CallError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api {
                status,
                code,
                message,
                retry_after,
            } => Self {
                status: status.as_u16(),
                code,
                message,
                retry_after: retry_after.map(|d| d.as_secs()),
            },
            ClientError::NotSignedIn => Self::not_signed_in(),
            ClientError::Transport(_) | ClientError::WebSocket(_) => Self::local(
                "network_error",
                "Cannot reach the server. Check your connection.",
            ),
            ClientError::InvalidUrl { url, reason } => Self::local(
                "invalid_server",
                format!("“{url}” is not a server address: {reason}."),
            ),
            other => Self::local("client_error", other.to_string()),
        }
    }
}

impl From<KeychainError> for CallError {
    fn from(e: KeychainError) -> Self {
        let code = match e {
            KeychainError::Locked | KeychainError::NotAnswering => "keychain_locked",
            KeychainError::Unavailable(_) => "keychain_unavailable",
            KeychainError::Failed(_) => "keychain_error",
        };
        Self::local(code, e.to_string())
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Config {
    server: Option<String>,
}

/// The session state, shared by every command.
pub struct Session {
    config_path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    server: Option<String>,
    api: Option<Api>,
    keychain: Option<Keychain>,
    realtime: Option<Realtime>,
}

impl Session {
    /// Reads the server address kept in `config_dir/config.json`, if any.
    pub fn load(config_dir: PathBuf) -> Self {
        let config_path = config_dir.join("config.json");
        let config: Config = std::fs::read(&config_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            config_path,
            inner: Mutex::new(Inner {
                server: config.server,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn server(&self) -> Option<String> {
        self.lock().server.clone()
    }

    /// Whether the kept server is reached privately, and what to say when not.
    pub fn server_security(&self) -> Option<ServerSecurity> {
        self.server().map(|url| address::security(&url))
    }

    /// Checks that `url` answers as a ChatApp server, then keeps it (and signs out of
    /// the previous one in this app; its token stays in the keychain for later). No scheme
    /// means `https://`; a redirect is reported, never followed into the kept address.
    pub async fn set_server(&self, url: &str) -> Result<String, CallError> {
        let address =
            address::parse(url).map_err(|message| CallError::local("invalid_server", message))?;
        let with_scheme = address.url;
        let api = Api::new(&with_scheme)?;
        api.health().await.map_err(|e| match e {
            ClientError::Transport(_) if with_scheme.starts_with("https://") => CallError::local(
                "server_unreachable",
                format!(
                    "No ChatApp server answers at {with_scheme}. Check the address; a server without HTTPS needs http:// typed in front."
                ),
            ),
            ClientError::Transport(_) => CallError::local(
                "server_unreachable",
                format!("No ChatApp server answers at {with_scheme}. Check the address."),
            ),
            ClientError::Redirected { location, .. } => CallError::local(
                "server_redirects",
                if location.is_empty() {
                    format!("{with_scheme} redirects elsewhere without saying where. Ask whoever runs the server for its address.")
                } else {
                    format!("{with_scheme} sends the app on to {location}. If that is your server, type that address instead.")
                },
            ),
            ClientError::Decode { .. } | ClientError::Api { .. } => CallError::local(
                "not_chatapp",
                format!("{with_scheme} answers, but it is not a ChatApp server."),
            ),
            other => other.into(),
        })?;
        let base = api.base_url();
        if let Some(dir) = self.config_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CallError::local("config_error", format!("Cannot save the settings: {e}"))
            })?;
        }
        let json = serde_json::to_vec_pretty(&Config {
            server: Some(base.clone()),
        })
        .map_err(|e| CallError::local("config_error", e.to_string()))?;
        std::fs::write(&self.config_path, json).map_err(|e| {
            CallError::local("config_error", format!("Cannot save the settings: {e}"))
        })?;
        let old_rt = {
            let mut inner = self.lock();
            inner.server = Some(base.clone());
            inner.api = None;
            inner.realtime.take()
        };
        if let Some(rt) = old_rt {
            rt.shutdown().await;
        }
        Ok(base)
    }

    fn keychain(&self) -> Result<Keychain, CallError> {
        let mut inner = self.lock();
        if let Some(k) = &inner.keychain
            && !k.is_stuck()
        {
            return Ok(k.clone());
        }
        let k = Keychain::open()?;
        tracing::info!(backend = %k.backend(), "keychain opened");
        inner.keychain = Some(k.clone());
        Ok(k)
    }

    /// The API client for the chosen server, with the keychain's token when there is one.
    pub fn api(&self) -> Result<Api, CallError> {
        let server = {
            let inner = self.lock();
            if let Some(api) = &inner.api {
                return Ok(api.clone());
            }
            inner
                .server
                .clone()
                .ok_or_else(|| CallError::local("no_server", "Choose your ChatApp server first."))?
        };
        let api = Api::new(&server)?;
        if let Some(token) = self.keychain()?.token(&server)? {
            api.set_token(Some(token));
        }
        self.lock().api = Some(api.clone());
        Ok(api)
    }

    /// The API client, only when signed in.
    pub fn authed(&self) -> Result<Api, CallError> {
        let api = self.api()?;
        if api.token().is_none() {
            return Err(CallError::not_signed_in());
        }
        Ok(api)
    }

    /// Runs `call` with the signed-in API client; a 401 (the kept token is no longer
    /// valid) forgets the session. The one way commands reach the server as the person.
    pub async fn call<T>(
        &self,
        call: impl AsyncFnOnce(Api) -> Result<T, ClientError>,
    ) -> Result<T, CallError> {
        let api = self.authed()?;
        call(api).await.map_err(|e| {
            if e.is_session_ended() {
                self.session_ended();
            }
            e.into()
        })
    }

    /// After register or login: the token goes to the keychain.
    pub fn keep_token(&self, api: &Api) -> Result<(), CallError> {
        let Some(token) = api.token() else {
            return Err(CallError::local("no_token", "The server sent no session."));
        };
        self.keychain()?.save_token(&api.base_url(), &token)?;
        Ok(())
    }

    /// Sign-out: the server revokes the session, then the connection ends and the keychain
    /// forgets it. When the server cannot be told (no answer, an error), nothing is
    /// forgotten: the person is still signed in, told so, and may retry or
    /// [`Session::forget`] the session on this computer only.
    pub async fn sign_out(&self) -> Result<(), CallError> {
        let api = self.api()?;
        if api.token().is_some() {
            match api.logout().await {
                Ok(()) => {}
                // Already revoked or expired: signed out all the same.
                Err(e) if e.is_session_ended() => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.forget().await
    }

    /// Forgets the session on this computer without telling the server (its session
    /// stays valid there until it expires or is ended from another device): the connection
    /// ends and the token leaves the keychain.
    pub async fn forget(&self) -> Result<(), CallError> {
        let rt = self.lock().realtime.take();
        if let Some(rt) = rt {
            rt.shutdown().await;
        }
        let api = self.api()?;
        api.set_token(None);
        self.keychain()?.delete_token(&api.base_url())?;
        Ok(())
    }

    /// Called when the server says the session is over (a 401, or close code 4001 on the
    /// realtime connection): forget the token.
    pub fn session_ended(&self) {
        let (api, keychain) = {
            let inner = self.lock();
            (inner.api.clone(), inner.keychain.clone())
        };
        if let Some(api) = api {
            api.set_token(None);
            if let Some(k) = keychain {
                let _ = k.delete_token(&api.base_url());
            }
        }
    }

    pub fn set_realtime(&self, rt: Option<Realtime>) -> Option<Realtime> {
        std::mem::replace(&mut self.lock().realtime, rt)
    }

    pub fn realtime(&self) -> Option<Realtime> {
        self.lock().realtime.clone()
    }
}
