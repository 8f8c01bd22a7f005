//! chatapp-server: builds the [`Router`] from [`AppState`] and serves it with graceful
//! shutdown. Resources live in one folder each (`auth`, `users`, `conversations`,
//! `messages`, `media`), the WebSocket route in `socket`; changes reach people through
//! `events` (publish, deliver, the broker between instances) over the transport in
//! `realtime`; rows become wire types in `views`; SQL lives only in `store`.

pub mod admin;
pub mod allowances;
pub mod auth;
pub mod cli;
pub mod config;
pub mod conversations;
pub mod error;
pub mod events;
pub mod extract;
pub mod http_transport;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod realtime;
pub mod socket;
pub mod store;
pub mod text;
pub mod users;
pub mod views;
mod web;

use std::{ops::Deref, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderValue, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use chatapp_protocol::{Health, User};
use tokio_util::task::TaskTracker;
use tower_http::{set_header::SetResponseHeaderLayer, trace::TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use config::Config;

use crate::{
    allowances::UserLimits,
    auth::limits::AuthLimits,
    error::ApiError,
    events::Broker,
    media::{
        Media,
        blobs::{LocalBlobs, Staging},
    },
    messages::writer::MessageWriter,
    realtime::{Hub, hub::ConnLimits},
    store::{Backend, Store, StoreOptions, UserRow},
};

/// Largest JSON body accepted by the API.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    /// The storage interface (SQLite or PostgreSQL).
    pub store: Store,
    /// The configuration the server was started with.
    pub config: Config,
    /// Key for the CSRF tokens' HMAC.
    pub secret: Vec<u8>,
    /// Sign-in and registration rate limits.
    pub limits: AuthLimits,
    /// Per-user allowances for sending and WebSocket frames.
    pub user_limits: UserLimits,
    /// Open WebSocket connections, so shutdown can wait for them to finish.
    pub websockets: TaskTracker,
    /// This instance's WebSocket connections.
    pub hub: Hub,
    /// Group-commit message writers.
    pub writer: MessageWriter,
    /// Carries changes to the other instances on the same PostgreSQL (none on SQLite).
    pub broker: Broker,
    /// Voice messages, avatars and their files.
    pub media: Media,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Store,
        config: Config,
        secret: Vec<u8>,
        broker: Broker,
        media: Media,
    ) -> Self {
        let limits = AuthLimits::new(
            config.auth_rate_per_account,
            config.auth_rate_per_address,
            Duration::from_secs(config.auth_rate_window_secs),
        );
        let writers = config.db_writers.unwrap_or(match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 1,
        });
        let hub = Hub::new(
            config.ws_queue,
            ConnLimits {
                per_user: config.ws_max_per_user,
                per_address: config.ws_max_per_address,
            },
        );
        let user_limits = UserLimits::new(&config);
        // The writer delivers what it commits through the state it is part of.
        Self(Arc::new_cyclic(|inner| AppInner {
            writer: MessageWriter::start(
                store.clone(),
                writers,
                store.backend() == Backend::Sqlite,
                Arc::new(messages::Delivery(inner.clone())),
            ),
            store,
            config,
            secret,
            limits,
            user_limits,
            websockets: TaskTracker::new(),
            hub,
            broker,
            media,
        }))
    }

    pub fn public_user(&self, row: &UserRow) -> User {
        views::public_user(row, self.is_online(row.id))
    }
}

/// The OpenAPI document's frame. Every operation needs one of the two security schemes
/// (the default below) unless its `#[utoipa::path]` says `security(())`: `/healthz`,
/// register and sign-in. Every error answer is an `ErrorBody`.
#[derive(OpenApi)]
#[openapi(
    info(title = "ChatApp API", description = "Self-hosted chat: accounts, conversations, messages. \
        Every error is `{\"error\": {\"code\", \"message\"}}` (`ErrorBody`); `error.code` is stable."),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("cookie" = []))
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer TOKEN` with the `token` of register or sign-in",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "The session cookie register and sign-in set, for browsers: requests other than \
                 GET also need a same-origin `Origin` and `X-CSRF-Token` (the `csrf_token` of \
                 register or sign-in, also in the `chatapp_csrf` cookie), and the WebSocket a \
                 same-origin `Origin`; else 403",
            ))),
        );
    }
}

/// The API's routes and the OpenAPI document generated from them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::routes::register))
        .routes(routes!(auth::routes::login))
        .routes(routes!(auth::routes::logout))
        .routes(routes!(
            auth::routes::get_me,
            auth::routes::patch_me,
            auth::routes::delete_me
        ))
        .routes(routes!(auth::routes::server_info))
        .routes(routes!(
            admin::routes::list_users,
            admin::routes::create_user
        ))
        .routes(routes!(admin::routes::update_user))
        .routes(routes!(admin::routes::reset_password))
        .routes(routes!(
            admin::routes::list_invites,
            admin::routes::create_invite
        ))
        .routes(routes!(admin::routes::revoke_invite))
        .routes(routes!(admin::routes::list_actions))
        .routes(routes!(users::routes::search))
        .routes(routes!(users::routes::get_user))
        .routes(routes!(
            conversations::routes::list_conversations,
            conversations::routes::create_conversation
        ))
        .routes(routes!(
            conversations::routes::get_conversation,
            conversations::routes::update_conversation
        ))
        .routes(routes!(conversations::routes::add_members))
        .routes(routes!(conversations::routes::remove_member))
        .routes(routes!(messages::routes::history, messages::routes::send))
        .routes(routes!(messages::routes::edit, messages::routes::delete))
        .routes(routes!(
            messages::routes::add_reaction,
            messages::routes::remove_reaction
        ))
        .routes(routes!(messages::routes::played))
        .routes(routes!(conversations::routes::put_settings))
        .routes(routes!(messages::routes::search))
        .routes(routes!(messages::routes::mark_read))
        .routes(routes!(media::routes::get_file))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(
                    media::routes::put_avatar,
                    media::routes::delete_avatar
                ))
                .layer(DefaultBodyLimit::max(
                    media::avatar::MAX_AVATAR_BYTES + 64 * 1024,
                )),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(media::routes::upload_voice))
                .layer(DefaultBodyLimit::max(
                    usize::try_from(media::MAX_VOICE_BYTES).unwrap_or(usize::MAX) + 64 * 1024,
                )),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(media::routes::upload_photo))
                .layer(DefaultBodyLimit::max(
                    usize::try_from(media::photo::MAX_PHOTO_BYTES).unwrap_or(usize::MAX)
                        + 64 * 1024,
                )),
        )
        .routes(routes!(socket::ws_handler))
        .routes(routes!(healthz))
        .split_for_parts()
}

/// The whole application: API, OpenAPI document, health check and the web UI.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    let body_timeouts = http_transport::BodyTimeouts {
        idle: state.config.body_idle_timeout(),
        total: state.config.body_timeout(),
    };
    Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            get(move || {
                let openapi = Arc::clone(&openapi);
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(web::fallback)
        // Security headers, unless a response set its own: API answers (a sign-in holds a
        // token) are never stored by caches (`/api/files/{id}` and the web UI's assets
        // keep their own `Cache-Control`), and nothing is content-sniffed.
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                )),
        )
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            body_timeouts,
            http_transport::limit_body_time,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Liveness, and whether storage takes writes: for a load balancer or a monitor.
#[utoipa::path(get, path = "/healthz", tag = "health",
    security(()),
    responses(
        (status = 200, description = "Serving; the database answers and has room to write", body = Health),
        (status = 503, description = "The database does not answer, or is full (the status says which)", body = Health),
    ))]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let unavailable = |status: String| (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status }));
    match state.store.full_reason().await {
        Ok(None) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
            }),
        ),
        Ok(Some(reason)) => {
            tracing::warn!(reason, "health check: storage full");
            unavailable(reason)
        }
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unreachable");
            unavailable("database unreachable".into())
        }
    }
}

/// Binds, opens storage, prints `listening on http://HOST:PORT` and serves until
/// SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen_addr();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let server = Server::start(config, listener).await?;
    println!("listening on http://{}", server.addr());
    if let Some(metrics) = server.metrics_addr() {
        println!("metrics on http://{metrics}/metrics");
    }
    use std::io::Write as _;
    std::io::stdout().flush().ok();
    shutdown_signal().await;
    server.stop().await;
    Ok(())
}

/// Serves on `listener` until `shutdown` completes, then stops gracefully: the server
/// in-process (tests, embedding), as `serve` runs it.
pub async fn serve_with_listener(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let server = Server::start(config, listener).await?;
    shutdown.await;
    server.stop().await;
    Ok(())
}

/// A running server: its state, address and serving task.
pub struct Server {
    state: AppState,
    addr: std::net::SocketAddr,
    /// Where the metrics are served (`--metrics-listen`), and the task serving them.
    metrics: Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>,
    stop: tokio_util::sync::CancellationToken,
    serving: tokio::task::JoinHandle<()>,
    housekeeping: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Opens storage (creating the data dir, the secret and the database as needed),
    /// starts the link to other instances and serves on `listener`.
    pub async fn start(
        mut config: Config,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        config.data_dir = config
            .data_dir
            .canonicalize()
            .context("resolving the data dir")?;
        let secret = load_or_create_secret(config.secret_key.as_deref(), &config.data_dir)?;
        let store = Store::connect_with(
            &config.effective_database_url(),
            &StoreOptions {
                sqlite_max_bytes: config.sqlite_max_size_mb.saturating_mul(1024 * 1024),
            },
        )
        .await?;
        tracing::info!(backend = ?store.backend(), "storage ready");
        let addr = listener.local_addr()?;
        let broker = match store.backend() {
            Backend::Postgres => Broker::postgres(&config.effective_database_url())
                .await
                .context("connecting the broker between instances")?,
            Backend::Sqlite => Broker::alone(),
        };
        let blobs = LocalBlobs::open(config.data_dir.join(media::blobs::BLOB_DIR))
            .await
            .context("opening the blob store")?;
        let staging = Staging::open(config.data_dir.join(media::blobs::BLOB_DIR).join("tmp"))
            .await
            .context("opening the upload staging directory")?;
        let media = Media::new(Arc::new(blobs), staging, config.media_workers());
        let state = AppState::new(store, config, secret, broker, media);
        let removed = state
            .media
            .collect_garbage(&state)
            .await
            .context("removing orphan files")?;
        if removed > 0 {
            tracing::info!(removed, "removed files no row refers to");
        }
        state.broker.start(&state);
        let stop = tokio_util::sync::CancellationToken::new();
        let metrics = match state.config.metrics_listen {
            Some(metrics_addr) => {
                let handle = metrics::install()?;
                let listener = metrics::bind(metrics_addr).await?;
                let bound = listener.local_addr()?;
                let task = tokio::spawn(metrics::serve(
                    listener,
                    state.clone(),
                    handle,
                    stop.clone(),
                ));
                Some((bound, task))
            }
            None => None,
        };
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let header_timeout = state.config.header_timeout();
        let serving = tokio::spawn(http_transport::serve(
            listener,
            router(state.clone()),
            header_timeout,
            {
                let state = state.clone();
                let stop = stop.clone();
                async move {
                    stop.cancelled().await;
                    // Close the WebSockets too; upgraded connections are not awaited by serve.
                    state.hub.shutdown();
                }
            },
        ));
        Ok(Self {
            state,
            addr,
            metrics,
            stop,
            serving,
            housekeeping,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Its state (the store, the hub, publishing changes).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops gracefully: no new connections, open ones closed (WebSockets with 1012),
    /// their users' last seen recorded, this instance's users announced offline
    /// elsewhere, storage closed.
    /// Where the metrics are served, when they are (`--metrics-listen`).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    pub async fn stop(self) {
        let state = self.state;
        self.stop.cancel();
        if let Err(err) = self.serving.await {
            tracing::warn!(error = %err, "the serving task failed");
        }
        if let Some((_, task)) = self.metrics
            && let Err(err) = task.await
        {
            tracing::warn!(error = %err, "the metrics task failed");
        }
        self.housekeeping.abort();
        // Let the closing WebSockets finish (send their close frames, record their users'
        // last_seen) before storage closes.
        state.websockets.close();
        if tokio::time::timeout(Duration::from_secs(5), state.websockets.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = state.websockets.len(),
                "connections still closing at shutdown"
            );
        }
        state.broker.stop().await;
        state.store.close().await;
        tracing::info!("stopped");
    }
}

/// Periodic upkeep: forget recovered rate-limit keys; close connections whose session
/// has ended without this instance hearing of it (expired, a missed change, or ended by
/// the operator's CLI).
async fn housekeeping(state: AppState) {
    // A deletion of an account that a crash interrupted is finished at start-up.
    if let Err(err) = messages::changes::remove_files_of_deleted_accounts(&state).await {
        tracing::warn!(error = %err, "cannot remove the files of deleted accounts");
    }
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.limits.shrink();
        state.user_limits.shrink();
        events::end_vanished_sessions(&state).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The configured secret, or the one kept in `data_dir/secret.key` (created on first start).
fn load_or_create_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= 16,
            "the secret key must be at least 16 characters"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!(
            "{} is too short; delete it to generate a new one",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    }
    let secret = auth::new_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    Ok(secret.into_bytes())
}
