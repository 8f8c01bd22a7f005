//! The Tauri commands: each only translates between the webview and the session, the
//! realtime connection (its events: `pump`), the recorder or the window. The web UI's desktop client
//! (`web-ui/src/api/tauri.ts`) is the other side; the names and shapes must match it.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use chatapp_client::protocol::{
    AddMembersRequest, AuthResponse, ClientEvent, Conversation, ConversationSettings,
    CreateConversationRequest, EditMessageRequest, HistoryQuery, LoginRequest, Me, Message,
    MessagePage, ReadState, RegisterRequest, SearchQuery, SearchResults, SendMessageRequest,
    UpdateConversationRequest, UpdateMeRequest, User, UserSearchQuery,
};
use chatapp_client::protocol::{
    AdminAction, AdminUser, AdminUserQuery, AdminUserUpdate, CreateInviteRequest,
    CreateUserRequest, Invite, ServerInfo, UserWithPassword,
};
use chatapp_client::{PendingMessage, Realtime, RealtimeOptions, Upload};
use tauri::ipc::{Channel, InvokeBody, JavaScriptChannelId, Request, Response};
use tauri::{AppHandle, Emitter, Manager, Runtime, State, Webview};

use crate::address::ServerSecurity;
use crate::recorder::{RECORDER, RecorderEvent, RecordingInfo, Recordings};
use crate::session::{CallError, Session};

type Res<T> = Result<T, CallError>;

fn no_token(mut r: AuthResponse) -> AuthResponse {
    // The token stays on the Rust side (and in the keychain): never in the webview.
    r.token = String::new();
    r.csrf_token = String::new();
    r
}

// ---- server and session ------------------------------------------------------------

#[tauri::command]
pub fn server_get(session: State<'_, Session>) -> Option<String> {
    session.server()
}

/// Whether the chosen server is reached privately (the sign-in screen warns when not).
#[tauri::command]
pub fn server_security(session: State<'_, Session>) -> Option<ServerSecurity> {
    session.server_security()
}

#[tauri::command]
pub async fn server_set(session: State<'_, Session>, url: String) -> Res<String> {
    session.set_server(&url).await
}

#[tauri::command]
pub async fn register(session: State<'_, Session>, input: RegisterRequest) -> Res<AuthResponse> {
    let api = session.api()?;
    let r = api.register(&input).await?;
    session.keep_token(&api)?;
    Ok(no_token(r))
}

/// Who may sign up on the chosen server (no session needed).
#[tauri::command]
pub async fn server_info(session: State<'_, Session>) -> Res<ServerInfo> {
    Ok(session.api()?.server_info().await?)
}

#[tauri::command]
pub async fn login(session: State<'_, Session>, input: LoginRequest) -> Res<AuthResponse> {
    let api = session.api()?;
    let r = api.login(&input.login, &input.password).await?;
    session.keep_token(&api)?;
    Ok(no_token(r))
}

/// Signs out: forgets the session only once the server has ended it (else an error, and
/// the person is still signed in).
#[tauri::command]
pub async fn logout<R: Runtime>(app: AppHandle<R>, session: State<'_, Session>) -> Res<()> {
    session.sign_out().await?;
    forget_local_files(&app);
    Ok(())
}

/// "Sign out on this computer only", when the server could not be told.
#[tauri::command]
pub async fn forget_session<R: Runtime>(app: AppHandle<R>, session: State<'_, Session>) -> Res<()> {
    session.forget().await?;
    forget_local_files(&app);
    Ok(())
}

/// Deletes the account (the password confirms it); then, as at sign-out, the keychain
/// forgets the session and the app its local files.
#[tauri::command]
pub async fn delete_account<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    password: String,
) -> Res<()> {
    session
        .call(async |api| api.delete_account(&password).await)
        .await?;
    session.forget().await?;
    forget_local_files(&app);
    Ok(())
}

// ---- admin -------------------------------------------------------------------------

#[tauri::command]
pub async fn admin_users(
    session: State<'_, Session>,
    query: AdminUserQuery,
) -> Res<Vec<AdminUser>> {
    session
        .call(async |api| api.admin_users(&query).await)
        .await
}

#[tauri::command]
pub async fn admin_create_user(
    session: State<'_, Session>,
    input: CreateUserRequest,
) -> Res<UserWithPassword> {
    session
        .call(async |api| api.admin_create_user(&input).await)
        .await
}

#[tauri::command]
pub async fn admin_update_user(
    session: State<'_, Session>,
    id: i64,
    input: AdminUserUpdate,
) -> Res<AdminUser> {
    session
        .call(async |api| api.admin_update_user(id, &input).await)
        .await
}

#[tauri::command]
pub async fn admin_reset_password(session: State<'_, Session>, id: i64) -> Res<UserWithPassword> {
    session
        .call(async |api| api.admin_reset_password(id).await)
        .await
}

#[tauri::command]
pub async fn invites(session: State<'_, Session>) -> Res<Vec<Invite>> {
    session.call(async |api| api.invites().await).await
}

#[tauri::command]
pub async fn create_invite(session: State<'_, Session>, input: CreateInviteRequest) -> Res<Invite> {
    session
        .call(async |api| api.create_invite(&input).await)
        .await
}

#[tauri::command]
pub async fn revoke_invite(session: State<'_, Session>, id: i64) -> Res<Invite> {
    session.call(async |api| api.revoke_invite(id).await).await
}

#[tauri::command]
pub async fn admin_actions(session: State<'_, Session>) -> Res<Vec<AdminAction>> {
    session.call(async |api| api.admin_actions().await).await
}

/// What the app kept of the person's media: recordings not sent (on disk and in memory).
fn forget_local_files<R: Runtime>(app: &AppHandle<R>) {
    app.state::<Recordings>().forget_all();
    if let Ok(dir) = app.path().app_cache_dir() {
        let recordings = dir.join("recordings");
        if let Err(e) = std::fs::remove_dir_all(&recordings)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "recordings not removed at sign-out");
        }
    }
}

#[tauri::command]
pub async fn me(session: State<'_, Session>) -> Res<Me> {
    session.call(async |api| api.me().await).await
}

#[tauri::command]
pub async fn update_me(session: State<'_, Session>, input: UpdateMeRequest) -> Res<Me> {
    session.call(async |api| api.update_me(&input).await).await
}

/// A header of a raw-bytes call, as text.
fn header(request: &Request<'_>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reports an upload's progress (0–1) on the channel an `x-progress` header names.
fn with_progress<R: Runtime>(upload: Upload, webview: Webview<R>, request: &Request<'_>) -> Upload {
    let Some(channel) = header(request, "x-progress")
        .and_then(|v| JavaScriptChannelId::from_str(&v).ok())
        .map(|id| id.channel_on::<_, f64>(webview))
    else {
        return upload;
    };
    upload.on_progress(move |p| {
        if p.total > 0 {
            let _ = channel.send(p.sent as f64 / p.total as f64);
        }
    })
}

/// The avatar's bytes come as the raw request body (no JSON), its type in `x-mime`.
#[tauri::command]
pub async fn upload_avatar<R: Runtime>(
    webview: Webview<R>,
    session: State<'_, Session>,
    request: Request<'_>,
) -> Res<Me> {
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(CallError::local(
            "invalid_request",
            "Expected the image's bytes.",
        ));
    };
    let mime = header(&request, "x-mime").unwrap_or_else(|| "application/octet-stream".into());
    let upload = with_progress(
        Upload::new(bytes.clone(), "avatar", &mime),
        webview,
        &request,
    );
    session.call(async |api| api.put_avatar(upload).await).await
}

#[tauri::command]
pub async fn delete_avatar(session: State<'_, Session>) -> Res<Me> {
    session.call(async |api| api.delete_avatar().await).await
}

#[tauri::command]
pub async fn search_users(session: State<'_, Session>, query: UserSearchQuery) -> Res<Vec<User>> {
    session
        .call(async |api| api.search_users(&query.q, query.limit).await)
        .await
}

#[tauri::command]
pub async fn user(session: State<'_, Session>, id: i64) -> Res<User> {
    session.call(async |api| api.user(id).await).await
}

#[tauri::command]
pub async fn conversations(session: State<'_, Session>) -> Res<Vec<Conversation>> {
    session.call(async |api| api.conversations().await).await
}

#[tauri::command]
pub async fn conversation(session: State<'_, Session>, id: i64) -> Res<Conversation> {
    session.call(async |api| api.conversation(id).await).await
}

#[tauri::command]
pub async fn create_conversation(
    session: State<'_, Session>,
    input: CreateConversationRequest,
) -> Res<Conversation> {
    session
        .call(async |api| match input {
            CreateConversationRequest::Direct { user_id } => api.direct_conversation(user_id).await,
            CreateConversationRequest::Group { title, member_ids } => {
                api.create_group(&title, &member_ids).await
            }
        })
        .await
}

#[tauri::command]
pub async fn update_conversation(
    session: State<'_, Session>,
    id: i64,
    input: UpdateConversationRequest,
) -> Res<Conversation> {
    session
        .call(async |api| api.rename_conversation(id, &input.title).await)
        .await
}

#[tauri::command]
pub async fn add_members(
    session: State<'_, Session>,
    id: i64,
    input: AddMembersRequest,
) -> Res<Conversation> {
    session
        .call(async |api| api.add_members(id, &input.user_ids).await)
        .await
}

#[tauri::command]
pub async fn remove_member(session: State<'_, Session>, id: i64, user: i64) -> Res<()> {
    session
        .call(async |api| api.remove_member(id, user).await)
        .await
}

#[tauri::command]
pub async fn history(
    session: State<'_, Session>,
    id: i64,
    query: HistoryQuery,
) -> Res<MessagePage> {
    session
        .call(async |api| api.history_page(id, &query).await)
        .await
}

#[tauri::command]
pub async fn send_message(
    session: State<'_, Session>,
    id: i64,
    input: SendMessageRequest,
) -> Res<Message> {
    session
        .call(async |api| match input.reply_to_id {
            Some(reply_to) => {
                api.send_reply(id, &input.body, input.client_id.as_deref(), reply_to)
                    .await
            }
            None => {
                api.send_message(id, &input.body, input.client_id.as_deref())
                    .await
            }
        })
        .await
}

#[tauri::command]
pub async fn edit_message(
    session: State<'_, Session>,
    id: i64,
    seq: i64,
    input: EditMessageRequest,
) -> Res<Message> {
    session
        .call(async |api| api.edit_message(id, seq, &input.body).await)
        .await
}

#[tauri::command]
pub async fn delete_message(session: State<'_, Session>, id: i64, seq: i64) -> Res<Message> {
    session
        .call(async |api| api.delete_message(id, seq).await)
        .await
}

#[tauri::command]
pub async fn react(
    session: State<'_, Session>,
    id: i64,
    seq: i64,
    emoji: String,
    on: bool,
) -> Res<Message> {
    session
        .call(async |api| api.react(id, seq, &emoji, on).await)
        .await
}

#[tauri::command]
pub async fn mark_played(session: State<'_, Session>, id: i64, seq: i64) -> Res<Message> {
    session
        .call(async |api| api.mark_played(id, seq).await)
        .await
}

#[tauri::command]
pub async fn update_settings(
    session: State<'_, Session>,
    id: i64,
    input: ConversationSettings,
) -> Res<Conversation> {
    session
        .call(async |api| api.set_muted(id, input.muted).await)
        .await
}

#[tauri::command]
pub async fn search_messages(
    session: State<'_, Session>,
    query: SearchQuery,
) -> Res<SearchResults> {
    session
        .call(async |api| api.search(&query.q, query.before_id, query.limit).await)
        .await
}

#[tauri::command]
pub async fn mark_read(session: State<'_, Session>, id: i64, seq: i64) -> Res<ReadState> {
    session.call(async |api| api.mark_read(id, seq).await).await
}

/// A voice file recorded elsewhere (not by the native recorder): raw body, headers
/// `x-conversation`, `x-client-id` and, for a reply, `x-reply-to`.
#[tauri::command]
pub async fn send_voice<R: Runtime>(
    webview: Webview<R>,
    session: State<'_, Session>,
    request: Request<'_>,
) -> Res<Message> {
    let (id, upload) = raw_upload(webview, &request, "audio", "voice")?;
    session
        .call(async |api| api.upload_voice(id, upload).await)
        .await
}

/// Sends a photo: its bytes as the raw request body (the server decides its type by
/// them), the conversation, `client_id` and reply in headers as for a voice message, and
/// the caption percent-encoded in `x-caption`.
#[tauri::command]
pub async fn send_photo<R: Runtime>(
    webview: Webview<R>,
    session: State<'_, Session>,
    request: Request<'_>,
) -> Res<Message> {
    let (id, mut upload) = raw_upload(webview, &request, "image", "photo")?;
    if let Some(caption) = header(&request, "x-caption") {
        let caption = percent_encoding::percent_decode_str(&caption)
            .decode_utf8()
            .map_err(|_| CallError::local("invalid_request", "The caption is not UTF-8."))?;
        upload = upload.caption(&caption);
    }
    session
        .call(async |api| api.upload_photo(id, upload).await)
        .await
}

/// An upload the webview sends as the raw request body (the `what`'s bytes), with the
/// conversation (`x-conversation`), `x-client-id` and `x-reply-to` in headers and its
/// progress reported on `x-progress`: the conversation and the upload.
fn raw_upload<R: Runtime>(
    webview: Webview<R>,
    request: &Request<'_>,
    what: &str,
    file_name: &str,
) -> Res<(i64, Upload)> {
    let InvokeBody::Raw(bytes) = request.body() else {
        return Err(CallError::local(
            "invalid_request",
            format!("Expected the {what}'s bytes."),
        ));
    };
    let id: i64 = header(request, "x-conversation")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| CallError::local("invalid_request", "No conversation."))?;
    let mut upload = Upload::new(bytes.clone(), file_name, "application/octet-stream");
    if let Some(cid) = header(request, "x-client-id") {
        upload = upload.client_id(&cid);
    }
    upload = upload.reply_to(header(request, "x-reply-to").and_then(|v| v.parse().ok()));
    Ok((id, with_progress(upload, webview, request)))
}

/// The largest file [`pick_photo`] reads: the server's limit for a photo (16 MB).
pub const MAX_PICKED_PHOTO: u64 = 16 * 1024 * 1024;

/// Opens the system's file chooser for an image (png, jpeg, gif, webp) over the window
/// and answers with the chosen file's bytes, or no bytes when the person cancelled. A
/// file larger than a photo may be is refused here, before it is read.
#[tauri::command]
pub async fn pick_photo<R: Runtime>(window: tauri::Window<R>) -> Res<Response> {
    let dialog = window
        .try_state::<tauri_plugin_dialog::Dialog<R>>()
        .ok_or_else(|| CallError::local("no_dialog", "This window cannot open files."))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    dialog
        .file()
        .set_title("Send a photo")
        .add_filter("Images", &["png", "jpg", "jpeg", "gif", "webp"])
        .set_parent(&window)
        .pick_file(move |picked| {
            let _ = tx.send(picked);
        });
    let Some(picked) = rx.await.ok().flatten() else {
        return Ok(Response::new(Vec::new()));
    };
    let path = picked.into_path().map_err(|e| {
        CallError::local("unreadable_file", format!("That file cannot be read: {e}"))
    })?;
    let read = tokio::task::spawn_blocking(move || {
        let size = std::fs::metadata(&path)?.len();
        if size > MAX_PICKED_PHOTO {
            return Ok(None);
        }
        std::fs::read(&path).map(Some)
    })
    .await
    .map_err(|e| CallError::local("unreadable_file", e.to_string()))?;
    match read {
        Ok(Some(bytes)) => Ok(Response::new(bytes)),
        Ok(None) => Err(CallError::local(
            "file_too_large",
            "That file is larger than 16 MB.",
        )),
        Err(e) => Err(CallError::local(
            "unreadable_file",
            format!("That file cannot be read: {e}"),
        )),
    }
}

/// A server file's bytes (`/api/files/{id}` only), for what the webview cannot stream
/// through `chatmedia:`: WebKitGTK's media player asks that scheme for a first range of
/// an audio file and then reports a format error, never asking for the rest (an image is
/// read whole and loads). Voice messages are played from these bytes (a few hundred KB
/// at most: Ogg Opus at 24 kbit/s).
#[tauri::command]
pub async fn media_file(session: State<'_, Session>, path: String) -> Res<Response> {
    let Some(path) = chatapp_client::file_path(&path).map(str::to_owned) else {
        return Err(CallError::local("invalid_request", "Not a server file."));
    };
    let file = session.call(async |api| api.download(&path).await).await?;
    Ok(Response::new(file.bytes.to_vec()))
}

// ---- realtime ----------------------------------------------------------------------

/// Starts the realtime connection (the client crate reconnects and resumes by itself);
/// its events go to the window as `chatapp://event` and `chatapp://state`.
#[tauri::command]
pub async fn realtime_start<R: Runtime>(
    app: AppHandle<R>,
    session: State<'_, Session>,
    cursors: HashMap<String, i64>,
    changes: Option<HashMap<String, i64>>,
) -> Res<()> {
    if session.realtime().is_some() {
        return Ok(());
    }
    let api = session.authed()?;
    let by_id = |map: HashMap<String, i64>| -> BTreeMap<i64, i64> {
        map.into_iter()
            .filter_map(|(k, v)| k.parse().ok().map(|k| (k, v)))
            .collect()
    };
    let (rt, events) = Realtime::start(
        api,
        RealtimeOptions {
            cursors: by_id(cursors),
            changes: by_id(changes.unwrap_or_default()),
            ..RealtimeOptions::default()
        },
    );
    if let Some(old) = session.set_realtime(Some(rt)) {
        old.shutdown().await;
    }
    crate::pump::spawn(app, events);
    Ok(())
}
#[tauri::command]
pub async fn realtime_stop(session: State<'_, Session>) -> Res<()> {
    if let Some(rt) = session.set_realtime(None) {
        rt.shutdown().await;
    }
    Ok(())
}

/// A frame from the web UI: sends go through the client crate's outbox (same
/// `client_id`, resent until acked); resume and ping are the client crate's business.
#[tauri::command]
pub fn realtime_send(session: State<'_, Session>, event: ClientEvent) -> bool {
    let Some(rt) = session.realtime() else {
        return false;
    };
    match event {
        ClientEvent::Send {
            conversation_id,
            client_id,
            body,
            reply_to_id,
        } => {
            let mut m = PendingMessage::new(conversation_id, body);
            m.client_id = client_id;
            m.reply_to_id = reply_to_id;
            rt.enqueue(m);
        }
        ClientEvent::Typing { conversation_id } => rt.typing(conversation_id),
        ClientEvent::Read {
            conversation_id,
            seq,
        } => rt.read(conversation_id, seq),
        ClientEvent::Played {
            conversation_id,
            seq,
        } => rt.played(conversation_id, seq),
        ClientEvent::Resume { .. } | ClientEvent::Ping => {}
    }
    true
}

/// The network is back (the webview's `online` event): reconnect now rather than after
/// the backoff.
#[tauri::command]
pub fn realtime_reconnect<R: Runtime>(app: AppHandle<R>) {
    crate::wake::reconnect(&app, "network back");
}

// ---- recorder ----------------------------------------------------------------------

#[tauri::command]
pub fn recorder_start<R: Runtime>(app: AppHandle<R>, rec: State<'_, Recordings>) -> Res<()> {
    let dir = app
        .path()
        .app_cache_dir()
        .map_err(|e| CallError::local("recorder_error", e.to_string()))?
        .join("recordings");
    rec.start(&dir, move |e: RecorderEvent| {
        let _ = app.emit(RECORDER, e);
    })
    .map_err(recorder_error)
}

fn recorder_error(e: impl std::fmt::Display) -> CallError {
    CallError::local("recorder_error", e.to_string())
}

#[tauri::command]
pub fn recorder_pause(rec: State<'_, Recordings>) {
    rec.pause();
}

#[tauri::command]
pub fn recorder_resume(rec: State<'_, Recordings>) {
    rec.resume();
}

#[tauri::command]
pub fn recorder_cancel(rec: State<'_, Recordings>) {
    rec.cancel();
}

#[tauri::command]
pub async fn recorder_stop(rec: State<'_, Recordings>) -> Res<RecordingInfo> {
    rec.stop().await.map_err(recorder_error)
}

/// The finished WAV's bytes, for listening before sending.
#[tauri::command]
pub fn recording_wav(rec: State<'_, Recordings>, id: u64) -> Res<Response> {
    let path = rec.path(id).ok_or_else(|| recorder_error(GONE))?;
    let bytes = std::fs::read(path).map_err(recorder_error)?;
    Ok(Response::new(bytes))
}

const GONE: &str = "That recording is gone.";

#[tauri::command]
pub fn recording_discard(rec: State<'_, Recordings>, id: u64) {
    rec.discard(id);
}

/// Uploads a finished recording from the Rust side, with progress (0–1) on `progress`.
#[tauri::command]
pub async fn recording_send(
    session: State<'_, Session>,
    rec: State<'_, Recordings>,
    id: u64,
    conversation: i64,
    client_id: String,
    reply_to_id: Option<i64>,
    progress: Channel<f64>,
) -> Res<Message> {
    let path = rec.path(id).ok_or_else(|| recorder_error(GONE))?;
    let bytes = tokio::fs::read(&path).await.map_err(recorder_error)?;
    let upload = Upload::wav(bytes)
        .client_id(&client_id)
        .reply_to(reply_to_id)
        .on_progress(move |p| {
            if p.total > 0 {
                let _ = progress.send(p.sent as f64 / p.total as f64);
            }
        });
    let message = session
        .call(async |api| api.upload_voice(conversation, upload).await)
        .await?;
    rec.discard(id);
    Ok(message)
}

// ---- window ------------------------------------------------------------------------

/// The unread total: in the window title and on the tray icon.
#[tauri::command]
pub fn set_unread<R: Runtime>(app: AppHandle<R>, count: u32) {
    crate::tray::show_unread(&app, count);
}

/// Shows a notification when the window is not focused (the web UI decides which).
#[tauri::command]
pub fn notify<R: Runtime>(
    app: AppHandle<R>,
    title: String,
    body: String,
    conversation: Option<i64>,
) {
    crate::notify::show(&app, &title, &body, conversation);
}
