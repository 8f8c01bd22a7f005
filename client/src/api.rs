//! REST: one method per route of the server, typed with the `protocol` crate, the
//! session as a Bearer token. Clones share the server address and the token, so signing
//! in on one signs in all (and the realtime connection picks them up on its next connect).

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use bytes::Bytes;
use chatapp_protocol::{
    AddMembersRequest, AdminAction, AdminUser, AdminUserQuery, AdminUserUpdate,
    CreateInviteRequest, CreateUserRequest, DeleteAccountRequest, Invite, ServerInfo,
    UserWithPassword,
};
use chatapp_protocol::{
    AuthResponse, Conversation, ConversationSettings, CreateConversationRequest,
    EditMessageRequest, Health, HistoryQuery, LoginRequest, Me, Message, MessagePage, ReadRequest,
    ReadState, RegisterRequest, SearchQuery, SearchResults, SendMessageRequest,
    UpdateConversationRequest, UpdateMeRequest, User, UserSearchQuery,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ClientError, Result};

/// Where the server is and who we are to it.
#[derive(Debug)]
struct Session {
    /// `http(s)://host[:port]`, no trailing slash.
    base: String,
    token: Option<String>,
}

/// The REST client. Cheap to clone; clones share the address and the token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    session: Arc<RwLock<Session>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Api")
            .field("base_url", &self.base_url())
            .field("signed_in", &self.token().is_some())
            .finish()
    }
}

/// Bytes sent of an upload so far, and its size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UploadProgress {
    pub sent: u64,
    pub total: u64,
}

type ProgressFn = Arc<dyn Fn(UploadProgress) + Send + Sync>;

/// A file to upload (voice message, photo or avatar), with optional progress reporting.
#[derive(Clone)]
pub struct Upload {
    bytes: Bytes,
    file_name: String,
    mime: String,
    caption: Option<String>,
    client_id: Option<String>,
    reply_to_id: Option<i64>,
    progress: Option<ProgressFn>,
}

/// Progress is reported per chunk handed to the connection.
const UPLOAD_CHUNK: usize = 64 * 1024;

impl Upload {
    pub fn new(bytes: impl Into<Bytes>, file_name: &str, mime: &str) -> Self {
        Self {
            bytes: bytes.into(),
            file_name: file_name.to_owned(),
            mime: mime.to_owned(),
            caption: None,
            client_id: None,
            reply_to_id: None,
            progress: None,
        }
    }

    /// A WAV file (what the desktop recorder makes).
    pub fn wav(bytes: impl Into<Bytes>) -> Self {
        Self::new(bytes, "voice.wav", "audio/wav")
    }

    /// A photo's caption (the server decides the image's type by its bytes, not by `mime`).
    #[must_use]
    pub fn caption(mut self, caption: &str) -> Self {
        self.caption = Some(caption.to_owned());
        self
    }

    /// Makes a retried voice or photo upload safe: the server stores one message per `client_id`.
    #[must_use]
    pub fn client_id(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// Makes the voice message or photo a reply to message `id` of the same conversation.
    #[must_use]
    pub fn reply_to(mut self, id: Option<i64>) -> Self {
        self.reply_to_id = id;
        self
    }

    /// Calls `f` as the body is streamed out (bytes handed to the connection / total).
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn(UploadProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Publishes progress on a watch channel.
    #[must_use]
    pub fn progress(self, tx: tokio::sync::watch::Sender<UploadProgress>) -> Self {
        self.on_progress(move |p| {
            tx.send_replace(p);
        })
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn into_form(self) -> Result<reqwest::multipart::Form> {
        let total = self.bytes.len() as u64;
        let bytes = self.bytes;
        let progress = self.progress;
        if let Some(report) = &progress {
            report(UploadProgress { sent: 0, total });
        }
        let chunks = futures_util::stream::unfold(0usize, move |offset| {
            let bytes = bytes.clone();
            let progress = progress.clone();
            async move {
                if offset >= bytes.len() {
                    return None;
                }
                let end = (offset + UPLOAD_CHUNK).min(bytes.len());
                if let Some(report) = &progress {
                    report(UploadProgress {
                        sent: end as u64,
                        total,
                    });
                }
                Some((Ok::<Bytes, std::io::Error>(bytes.slice(offset..end)), end))
            }
        });
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), total)
                .file_name(self.file_name)
                .mime_str(&self.mime)
                .map_err(|e| ClientError::Decode {
                    status: reqwest::StatusCode::BAD_REQUEST,
                    detail: format!("media type {:?}: {e}", self.mime),
                })?;
        let mut form = reqwest::multipart::Form::new();
        if let Some(caption) = self.caption {
            form = form.text("caption", caption);
        }
        if let Some(id) = self.client_id {
            form = form.text("client_id", id);
        }
        if let Some(id) = self.reply_to_id {
            form = form.text("reply_to_id", id.to_string());
        }
        Ok(form.part("file", part))
    }
}

/// A downloaded file, or the part of it a `Range` asked for.
#[derive(Debug, Clone)]
pub struct Download {
    pub bytes: Bytes,
    pub content_type: Option<String>,
    /// 200 for the whole file, 206 for a part.
    pub status: StatusCode,
    /// `bytes first-last/total` when this is a part.
    pub content_range: Option<String>,
}

/// `path` when it is a server file's path as the server hands them out: exactly
/// `/api/files/` and one id of letters, digits, `-` or `_`. Nothing is decoded or
/// normalized, so no encoding of `..`, `/`, `\\`, `?` or `#` can reach another route or host.
pub fn file_path(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/api/files/")?;
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(path)
}

fn normalize_base(url: &str) -> Result<String> {
    let base = url.trim().trim_end_matches('/');
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .ok_or_else(|| invalid("must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(invalid("expected http(s)://host[:port]"));
    }
    Ok(base.to_owned())
}

impl Api {
    /// A client for the server at `base_url` (`http(s)://host[:port]`), not signed in.
    /// It never follows a redirect (see [`ClientError::Redirected`]).
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Self::with_http(base_url, http)
    }

    /// As [`Api::new`], with a `reqwest::Client` of your own (timeouts, proxies).
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Self> {
        Ok(Self {
            http,
            session: Arc::new(RwLock::new(Session {
                base: normalize_base(base_url)?,
                token: None,
            })),
        })
    }

    /// A client with a session of its own (sharing the connection pool), e.g. one
    /// restored from the keychain. Not shared with `self`'s clones.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            http: self.http.clone(),
            session: Arc::new(RwLock::new(Session {
                base: self.base_url(),
                token: Some(token.to_owned()),
            })),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Session> {
        self.session.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Session> {
        self.session.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn base_url(&self) -> String {
        self.read().base.clone()
    }

    /// Points this client (and its clones, and a realtime connection made from it) at
    /// another address, e.g. after the server moved.
    pub fn set_base_url(&self, base_url: &str) -> Result<()> {
        let base = normalize_base(base_url)?;
        self.write().base = base;
        Ok(())
    }

    pub fn token(&self) -> Option<String> {
        self.read().token.clone()
    }

    pub fn set_token(&self, token: Option<String>) {
        self.write().token = token;
    }

    /// The WebSocket address: `ws(s)://host[:port]/api/ws`.
    pub fn ws_url(&self) -> String {
        let base = self.base_url();
        let ws = match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", base.trim_start_matches("http://")),
        };
        format!("{ws}/api/ws")
    }

    /// A request to `path` (starting with `/`) with the token, when there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let session = self.read();
        let mut req = self.http.request(method, format!("{}{path}", session.base));
        if let Some(token) = &session.token {
            req = req.bearer_auth(token);
        }
        req
    }

    fn authed(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        if self.read().token.is_none() {
            return Err(ClientError::NotSignedIn);
        }
        Ok(self.request(method, path))
    }

    /// Sends, and turns a non-success answer into [`ClientError::Api`] (a redirect into
    /// [`ClientError::Redirected`]).
    async fn execute(req: RequestBuilder) -> Result<Response> {
        let resp = req.send().await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            return Err(ClientError::Redirected { status, location });
        }
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let body = resp.bytes().await.unwrap_or_default();
        Err(ClientError::from_answer(
            status,
            retry_after.as_ref(),
            &body,
        ))
    }

    async fn json<T: DeserializeOwned>(req: RequestBuilder) -> Result<T> {
        let resp = Self::execute(req).await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            status,
            detail: e.to_string(),
        })
    }

    async fn empty(req: RequestBuilder) -> Result<()> {
        Self::execute(req).await.map(drop)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Self::json(self.authed(Method::GET, path)?).await
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        Self::json(self.authed(method, path)?.json(body)).await
    }

    // ---- auth ---------------------------------------------------------------------

    /// Creates an account and signs in with it (the token is kept).
    pub async fn register(&self, req: &RegisterRequest) -> Result<AuthResponse> {
        let auth: AuthResponse =
            Self::json(self.request(Method::POST, "/api/auth/register").json(req)).await?;
        self.set_token(Some(auth.token.clone()));
        Ok(auth)
    }

    /// Signs in with a username or email and the password (the token is kept).
    pub async fn login(&self, login: &str, password: &str) -> Result<AuthResponse> {
        let req = LoginRequest {
            login: login.to_owned(),
            password: password.to_owned(),
        };
        let auth: AuthResponse =
            Self::json(self.request(Method::POST, "/api/auth/login").json(&req)).await?;
        self.set_token(Some(auth.token.clone()));
        Ok(auth)
    }

    /// Revokes the session on the server and forgets the token (also when the server
    /// says it was already gone).
    pub async fn logout(&self) -> Result<()> {
        let result = Self::empty(self.authed(Method::POST, "/api/auth/logout")?).await;
        match result {
            Ok(()) => {
                self.set_token(None);
                Ok(())
            }
            Err(err) if err.is_session_ended() => {
                self.set_token(None);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    // ---- account --------------------------------------------------------------------

    pub async fn me(&self) -> Result<Me> {
        self.get("/api/me").await
    }

    pub async fn update_me(&self, req: &UpdateMeRequest) -> Result<Me> {
        self.send_json(Method::PATCH, "/api/me", req).await
    }

    /// `PUT /api/me/avatar`: png, jpeg, gif or webp, at most 5 MB.
    pub async fn put_avatar(&self, file: Upload) -> Result<Me> {
        let form = file.into_form()?;
        Self::json(self.authed(Method::PUT, "/api/me/avatar")?.multipart(form)).await
    }

    pub async fn delete_avatar(&self) -> Result<Me> {
        Self::json(self.authed(Method::DELETE, "/api/me/avatar")?).await
    }

    /// `DELETE /api/me`: deletes the account (the password confirms it) and forgets the
    /// token.
    pub async fn delete_account(&self, password: &str) -> Result<()> {
        let req = DeleteAccountRequest {
            password: password.to_owned(),
        };
        Self::empty(self.authed(Method::DELETE, "/api/me")?.json(&req)).await?;
        self.set_token(None);
        Ok(())
    }

    /// `GET /api/server` (no session needed): who may sign up.
    pub async fn server_info(&self) -> Result<ServerInfo> {
        Self::json(self.request(Method::GET, "/api/server")).await
    }

    // ---- admin ----------------------------------------------------------------------

    /// Accounts whose username, display name or email starts with `q` (all for `None`).
    pub async fn admin_users(&self, query: &AdminUserQuery) -> Result<Vec<AdminUser>> {
        Self::json(self.authed(Method::GET, "/api/admin/users")?.query(query)).await
    }

    /// Creates an account; its generated password comes back this once.
    pub async fn admin_create_user(&self, req: &CreateUserRequest) -> Result<UserWithPassword> {
        self.send_json(Method::POST, "/api/admin/users", req).await
    }

    /// Grants or revokes admin, disables or re-enables an account.
    pub async fn admin_update_user(&self, id: i64, req: &AdminUserUpdate) -> Result<AdminUser> {
        self.send_json(Method::PATCH, &format!("/api/admin/users/{id}"), req)
            .await
    }

    /// Sets a new generated password (it comes back this once) and ends the sessions.
    pub async fn admin_reset_password(&self, id: i64) -> Result<UserWithPassword> {
        Self::json(self.authed(Method::POST, &format!("/api/admin/users/{id}/password"))?).await
    }

    pub async fn invites(&self) -> Result<Vec<Invite>> {
        self.get("/api/admin/invites").await
    }

    pub async fn create_invite(&self, req: &CreateInviteRequest) -> Result<Invite> {
        self.send_json(Method::POST, "/api/admin/invites", req)
            .await
    }

    pub async fn revoke_invite(&self, id: i64) -> Result<Invite> {
        Self::json(self.authed(Method::DELETE, &format!("/api/admin/invites/{id}"))?).await
    }

    /// The record of admin actions, newest first.
    pub async fn admin_actions(&self) -> Result<Vec<AdminAction>> {
        self.get("/api/admin/actions").await
    }

    // ---- users ----------------------------------------------------------------------

    /// Users whose username or display name starts with `q` (at most `limit`, ≤ 50).
    pub async fn search_users(&self, q: &str, limit: Option<i64>) -> Result<Vec<User>> {
        let query = UserSearchQuery {
            q: q.to_owned(),
            limit,
        };
        Self::json(self.authed(Method::GET, "/api/users")?.query(&query)).await
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        self.get(&format!("/api/users/{id}")).await
    }

    // ---- conversations ----------------------------------------------------------------

    /// Yours, newest activity first, with members, last message and unread count.
    pub async fn conversations(&self) -> Result<Vec<Conversation>> {
        self.get("/api/conversations").await
    }

    /// Gets or creates the direct conversation with `user_id`.
    pub async fn direct_conversation(&self, user_id: i64) -> Result<Conversation> {
        self.send_json(
            Method::POST,
            "/api/conversations",
            &CreateConversationRequest::Direct { user_id },
        )
        .await
    }

    /// Creates a group owned by you.
    pub async fn create_group(&self, title: &str, member_ids: &[i64]) -> Result<Conversation> {
        self.send_json(
            Method::POST,
            "/api/conversations",
            &CreateConversationRequest::Group {
                title: title.to_owned(),
                member_ids: member_ids.to_vec(),
            },
        )
        .await
    }

    pub async fn conversation(&self, id: i64) -> Result<Conversation> {
        self.get(&format!("/api/conversations/{id}")).await
    }

    /// Renames a group (its owner only).
    pub async fn rename_conversation(&self, id: i64, title: &str) -> Result<Conversation> {
        self.send_json(
            Method::PATCH,
            &format!("/api/conversations/{id}"),
            &UpdateConversationRequest {
                title: title.to_owned(),
            },
        )
        .await
    }

    /// Adds members to a group (its owner only).
    pub async fn add_members(&self, id: i64, user_ids: &[i64]) -> Result<Conversation> {
        self.send_json(
            Method::POST,
            &format!("/api/conversations/{id}/members"),
            &AddMembersRequest {
                user_ids: user_ids.to_vec(),
            },
        )
        .await
    }

    /// Removes a member from a group (the owner; or yourself, to leave).
    pub async fn remove_member(&self, id: i64, user_id: i64) -> Result<()> {
        Self::empty(self.authed(
            Method::DELETE,
            &format!("/api/conversations/{id}/members/{user_id}"),
        )?)
        .await
    }

    // ---- messages ----------------------------------------------------------------------

    /// A page of history, oldest first: the newest `limit` (1–100, default 50) messages
    /// with a seq below `before_seq` (or the newest when `None`).
    pub async fn history(
        &self,
        conversation_id: i64,
        before_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Result<MessagePage> {
        let query = HistoryQuery {
            before_seq,
            limit,
            ..HistoryQuery::default()
        };
        self.history_page(conversation_id, &query).await
    }

    /// A page of history as `query` asks: before a seq, after one, or around one.
    pub async fn history_page(
        &self,
        conversation_id: i64,
        query: &HistoryQuery,
    ) -> Result<MessagePage> {
        Self::json(
            self.authed(
                Method::GET,
                &format!("/api/conversations/{conversation_id}/messages"),
            )?
            .query(query),
        )
        .await
    }

    /// Sends a text message over HTTP. With a `client_id` a retry returns the stored
    /// message instead of storing it twice. (The realtime outbox is the usual way.)
    pub async fn send_message(
        &self,
        conversation_id: i64,
        body: &str,
        client_id: Option<&str>,
    ) -> Result<Message> {
        self.send_json(
            Method::POST,
            &format!("/api/conversations/{conversation_id}/messages"),
            &SendMessageRequest {
                body: body.to_owned(),
                client_id: client_id.map(str::to_owned),
                reply_to_id: None,
            },
        )
        .await
    }

    /// Sends a reply to message `reply_to_id` (of the same conversation) over HTTP.
    pub async fn send_reply(
        &self,
        conversation_id: i64,
        body: &str,
        client_id: Option<&str>,
        reply_to_id: i64,
    ) -> Result<Message> {
        self.send_json(
            Method::POST,
            &format!("/api/conversations/{conversation_id}/messages"),
            &SendMessageRequest {
                body: body.to_owned(),
                client_id: client_id.map(str::to_owned),
                reply_to_id: Some(reply_to_id),
            },
        )
        .await
    }

    /// Replaces the text of your own text message.
    pub async fn edit_message(
        &self,
        conversation_id: i64,
        seq: i64,
        body: &str,
    ) -> Result<Message> {
        self.send_json(
            Method::PATCH,
            &format!("/api/conversations/{conversation_id}/messages/{seq}"),
            &EditMessageRequest {
                body: body.to_owned(),
            },
        )
        .await
    }

    /// Deletes a message for everyone (yours, or any in a group you own).
    pub async fn delete_message(&self, conversation_id: i64, seq: i64) -> Result<Message> {
        Self::json(self.authed(
            Method::DELETE,
            &format!("/api/conversations/{conversation_id}/messages/{seq}"),
        )?)
        .await
    }

    /// Adds (`on`) or takes back your reaction with `emoji`.
    pub async fn react(
        &self,
        conversation_id: i64,
        seq: i64,
        emoji: &str,
        on: bool,
    ) -> Result<Message> {
        let method = if on { Method::PUT } else { Method::DELETE };
        // Every byte percent-encoded: the URL parser would trim or keep some as they are.
        let emoji: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
        Self::json(self.authed(
            method,
            &format!("/api/conversations/{conversation_id}/messages/{seq}/reactions/{emoji}"),
        )?)
        .await
    }

    /// Says you played someone else's voice message (marking it again changes nothing).
    pub async fn mark_played(&self, conversation_id: i64, seq: i64) -> Result<Message> {
        Self::json(self.authed(
            Method::POST,
            &format!("/api/conversations/{conversation_id}/messages/{seq}/played"),
        )?)
        .await
    }

    /// Searches the text of your conversations' messages, newest first; the next page
    /// with `before_id` = the last result's id.
    pub async fn search(
        &self,
        q: &str,
        before_id: Option<i64>,
        limit: Option<i64>,
    ) -> Result<SearchResults> {
        let query = SearchQuery {
            q: q.to_owned(),
            before_id,
            limit,
        };
        Self::json(self.authed(Method::GET, "/api/search")?.query(&query)).await
    }

    /// Mutes or unmutes a conversation for you (on all your devices).
    pub async fn set_muted(&self, conversation_id: i64, muted: bool) -> Result<Conversation> {
        self.send_json(
            Method::PUT,
            &format!("/api/conversations/{conversation_id}/settings"),
            &ConversationSettings { muted },
        )
        .await
    }

    /// Moves your read position forward to `seq` (never backwards).
    pub async fn mark_read(&self, conversation_id: i64, seq: i64) -> Result<ReadState> {
        self.send_json(
            Method::POST,
            &format!("/api/conversations/{conversation_id}/read"),
            &ReadRequest { seq },
        )
        .await
    }

    /// Uploads a voice message (mp3, wav, ogg, m4a, webm; at most 16 MB), streamed, with
    /// progress when the [`Upload`] asks for it. The answer carries the attachment with
    /// its measured `duration_ms`.
    pub async fn upload_voice(&self, conversation_id: i64, file: Upload) -> Result<Message> {
        let form = file.into_form()?;
        Self::json(
            self.authed(
                Method::POST,
                &format!("/api/conversations/{conversation_id}/voice"),
            )?
            .multipart(form),
        )
        .await
    }

    /// Sends a photo (png, jpeg, gif or webp, decided by its bytes) with the upload's
    /// caption, `client_id` and reply: the message carries the re-encoded image's and its
    /// thumbnail's URLs and sizes.
    pub async fn upload_photo(&self, conversation_id: i64, file: Upload) -> Result<Message> {
        let form = file.into_form()?;
        Self::json(
            self.authed(
                Method::POST,
                &format!("/api/conversations/{conversation_id}/photos"),
            )?
            .multipart(form),
        )
        .await
    }

    // ---- files -------------------------------------------------------------------------

    /// Downloads a file by the URL the server gave (`attachment.url`, `avatar_url`: a path
    /// such as `/api/files/{id}`, or an absolute URL on this server).
    pub async fn download(&self, url: &str) -> Result<Download> {
        self.download_range(url, None).await
    }

    /// Like [`Api::download`], with an HTTP `Range` header (`bytes=0-1023`, `bytes=500-`)
    /// passed to the server as it is: the answer is then 206 with `content_range`, or the
    /// whole file (200) when the server ignores the range. An unsatisfiable range is an
    /// error with status 416.
    pub async fn download_range(&self, url: &str, range: Option<&str>) -> Result<Download> {
        let base = self.base_url();
        let path = url.strip_prefix(base.as_str()).unwrap_or(url);
        let path = file_path(path).ok_or_else(|| ClientError::InvalidUrl {
            url: url.to_owned(),
            reason: "not a file on this server (/api/files/{id})".to_owned(),
        })?;
        let mut req = self.authed(Method::GET, path)?;
        if let Some(range) = range {
            req = req.header(header::RANGE, range);
        }
        let resp = Self::execute(req).await?;
        let text = |name: header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = text(header::CONTENT_TYPE);
        let content_range = text(header::CONTENT_RANGE);
        let status = resp.status();
        Ok(Download {
            bytes: resp.bytes().await?,
            content_type,
            status,
            content_range,
        })
    }

    /// `GET /healthz` (no session needed).
    pub async fn health(&self) -> Result<Health> {
        Self::json(self.request(Method::GET, "/healthz")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_mapped_to_websocket_urls() {
        let api = Api::new("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(api.base_url(), "http://127.0.0.1:8080");
        assert_eq!(api.ws_url(), "ws://127.0.0.1:8080/api/ws");
        api.set_base_url("https://chat.example.org").expect("valid");
        assert_eq!(api.ws_url(), "wss://chat.example.org/api/ws");
        assert!(Api::new("chat.example.org").is_err());
        assert!(Api::new("http://host/path").is_err());
        assert!(matches!(
            api.set_base_url("ftp://x"),
            Err(ClientError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn clones_share_the_session_and_debug_hides_the_token() {
        let api = Api::new("http://127.0.0.1:1").expect("valid");
        let clone = api.clone();
        api.set_token(Some("secret-token".into()));
        assert_eq!(clone.token().as_deref(), Some("secret-token"));
        assert!(!format!("{api:?}").contains("secret"));
        let other = api.with_token("other");
        other.set_token(None);
        assert_eq!(api.token().as_deref(), Some("secret-token"));
    }

    #[test]
    fn only_file_paths_of_this_server_are_downloaded() {
        let id = "0123456789abcdef0123456789abcdef";
        let path = format!("/api/files/{id}");
        assert_eq!(file_path(&path), Some(path.as_str()));
        for bad in [
            "/api/me".to_owned(),
            "/api/files/".to_owned(),
            "/api/files/../me".to_owned(),
            "/api/files/%2e%2e/me".to_owned(),
            "/api/files/%2E%2E%2Fme".to_owned(),
            "/api/files/%252e%252e%252fme".to_owned(),
            "/api/files/.%2e/me".to_owned(),
            "/api/files/..\\me".to_owned(),
            "/api/files/%5c..%5cme".to_owned(),
            format!("/api/files/{id}/"),
            format!("/api/files/{id}?x=1"),
            format!("/api/files/{id}#x"),
            format!("/api/files/{id}%00"),
            format!("https://evil.example/api/files/{id}"),
            format!("//evil.example/api/files/{id}"),
            format!("https://chat.example.org.evil.example/api/files/{id}"),
            format!("https://chat.example.org/api/files/{id}"),
            format!("/api/files/{}", "a".repeat(65)),
        ] {
            assert_eq!(file_path(&bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn downloads_outside_the_files_are_refused_without_a_request() {
        let api = Api::new("http://127.0.0.1:1").expect("valid");
        api.set_token(Some("t".into()));
        let ok = format!("{}/api/files/ab", api.base_url());
        assert!(
            !matches!(api.download(&ok).await, Err(ClientError::InvalidUrl { .. })),
            "this server's absolute file URL is a file"
        );
        for bad in [
            "/api/files/%2e%2e/me",
            "/api/me",
            "https://evil.example/api/files/ab",
            "http://127.0.0.1:1/api/files/../me",
        ] {
            assert!(
                matches!(api.download(bad).await, Err(ClientError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn calls_needing_a_session_say_so_without_a_request() {
        let api = Api::new("http://127.0.0.1:1").expect("valid");
        assert!(matches!(api.me().await, Err(ClientError::NotSignedIn)));
    }
}
