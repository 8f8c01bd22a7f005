//! ChatApp's wire types: the JSON bodies of the REST API, the WebSocket events and the
//! error shape. The server, the desktop client, the tests and the benchmark all use these
//! types, so the contract (described in `docs/ARCHITECTURE.md`) exists in exactly one place in
//! code.
//!
//! This crate holds data only: no I/O, no validation beyond what serde enforces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use time::OffsetDateTime;

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// Longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest `client_id`, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// Largest history page.
pub const MAX_PAGE: i64 = 100;
/// Most members in one group conversation.
pub const MAX_GROUP_MEMBERS: usize = 256;
/// Most different emojis on one message.
pub const MAX_REACTIONS: usize = 32;
/// Largest page of search results.
pub const MAX_SEARCH_PAGE: i64 = 50;

/// `{"error": {"code": "snake_case", "message": "human text"}}`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `body_too_long`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// A user as anyone signed in may see them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// The display name's look-alike key: the Unicode confusable skeleton (UTS #39) of its
    /// lowercase form. Two people whose keys are equal look alike on screen, and clients
    /// show them apart by username.
    #[serde(default)]
    pub name_key: String,
    /// The 256 px avatar (PNG), if any.
    pub avatar_url: Option<String>,
    /// The 64 px avatar (PNG), if any.
    #[serde(default)]
    pub avatar_small_url: Option<String>,
    pub online: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_seen: Option<OffsetDateTime>,
    /// The account was deleted: its messages stay, shown under "Deleted user" (its
    /// `display_name`); it has no avatar and is never online.
    #[serde(default)]
    pub deleted: bool,
}

/// The signed-in user's own account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// The display name's look-alike key: the Unicode confusable skeleton (UTS #39) of its
    /// lowercase form. Two people whose keys are equal look alike on screen, and clients
    /// show them apart by username.
    #[serde(default)]
    pub name_key: String,
    pub email: String,
    /// The 256 px avatar (PNG), if any.
    pub avatar_url: Option<String>,
    /// The 64 px avatar (PNG), if any.
    #[serde(default)]
    pub avatar_small_url: Option<String>,
    /// An admin of the server (the first account is one).
    #[serde(default)]
    pub is_admin: bool,
    pub online: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_seen: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct RegisterRequest {
    /// 3–32 letters, digits, `_`, `.` or `-`; unique ignoring case.
    pub username: String,
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// Defaults to the username.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The code of an invite (the part of the invite link after `#/invite/`): needed
    /// when the server's registration is `invite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub invite: Option<String>,
}

/// Who may create an account on this server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone who reaches the server.
    #[default]
    Open,
    /// Whoever has an invite an admin made.
    Invite,
    /// Nobody: admins (and the operator's CLI) create the accounts.
    Closed,
}

/// `GET /api/server`: what a client needs to know before signing in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ServerInfo {
    pub registration: Registration,
}

/// Body of `DELETE /api/me`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeleteAccountRequest {
    /// The account's password, to confirm.
    pub password: String,
}

/// An account as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminUser {
    /// As everyone sees it (online state and last seen included).
    pub user: User,
    pub email: String,
    pub is_admin: bool,
    /// Disabled: cannot sign in; its sessions were ended.
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// Query of `GET /api/admin/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminUserQuery {
    /// Prefix of a username, display name or email (case-insensitive); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub q: Option<String>,
    /// At most 200; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub limit: Option<i64>,
}

/// Body of `PATCH /api/admin/users/{id}`: what to change (at least one).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminUserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub is_admin: Option<bool>,
    /// `true` ends the account's sessions at once and closes its connections (4001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub disabled: Option<bool>,
}

/// Body of `POST /api/admin/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateUserRequest {
    pub username: String,
    pub email: String,
    /// Defaults to the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub display_name: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
}

/// An account an admin created, or whose password an admin reset, with its new password,
/// shown this once (the server keeps only its hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserWithPassword {
    pub user: AdminUser,
    pub password: String,
}

/// Where an invite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InviteState {
    Active,
    UsedUp,
    Expired,
    Revoked,
}

/// An invite: its code makes the link `ORIGIN/#/invite/CODE`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Invite {
    pub id: i64,
    pub code: String,
    pub max_uses: i64,
    pub uses: i64,
    pub state: InviteState,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// The admin who made it (absent: the operator's CLI).
    pub created_by: Option<User>,
}

/// Body of `POST /api/admin/invites`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateInviteRequest {
    /// How many accounts it may create: 1–1000, default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub max_uses: Option<i64>,
    /// Hours until it expires: 1–8760 (a year), default 168 (a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub expires_in_hours: Option<i64>,
}

/// One recorded admin action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdminAction {
    pub id: i64,
    /// Who did it (absent: the operator's CLI, or an account since removed).
    pub actor: Option<User>,
    /// `create_user`, `grant_admin`, `revoke_admin`, `disable`, `enable`,
    /// `reset_password`, `create_invite`, `revoke_invite`.
    pub action: String,
    /// To whom, for actions on an account.
    pub target: Option<User>,
    /// More about it (an invite's id and uses, for example).
    pub detail: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginRequest {
    /// Username or email.
    pub login: String,
    pub password: String,
}

/// Answer to register and login. Browsers also get the token as an HttpOnly cookie and
/// the CSRF token as a readable cookie; other clients send `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuthResponse {
    pub user: Me,
    pub token: String,
    /// Send as `X-CSRF-Token` on state-changing requests authenticated by the cookie.
    pub csrf_token: String,
}

/// `PATCH /api/me`: every field optional. Changing the password needs `current_password`
/// and ends every other session of the account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub new_password: Option<String>,
    #[serde(default)]
    pub current_password: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Group,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Conversation {
    pub id: i64,
    pub kind: ConversationKind,
    /// Groups only.
    pub title: Option<String>,
    /// The group's owner (may rename, add and remove); `null` for direct conversations.
    pub owner_id: Option<i64>,
    pub members: Vec<User>,
    /// How far each member has read (for "seen" / "seen by N"), in the order of `members`.
    pub read_positions: Vec<ReadPosition>,
    pub last_message: Option<Message>,
    /// Messages after the caller's read position.
    pub unread_count: i64,
    pub last_read_seq: i64,
    pub last_seq: i64,
    /// The conversation's last change number: every edit, deletion or reaction takes the
    /// next one and becomes the changed message's `rev`. Resume with it (`changes`).
    #[serde(default)]
    pub last_change: i64,
    /// Unread messages that mention the caller.
    #[serde(default)]
    pub unread_mentions: i64,
    /// The caller muted it: no notifications or sounds except for mentions.
    #[serde(default)]
    pub muted: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_activity_at: OffsetDateTime,
}

/// `PUT /api/conversations/{id}/settings`: the caller's own settings of a conversation
/// (on all their devices).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ConversationSettings {
    pub muted: bool,
}

/// One member's read position in a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReadPosition {
    pub user_id: i64,
    /// The highest seq the member has read (0: nothing).
    pub last_read_seq: i64,
}

/// `POST /api/conversations`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CreateConversationRequest {
    /// Get-or-create the one direct conversation with `user_id`.
    Direct { user_id: i64 },
    /// A new group owned by the caller.
    Group {
        title: String,
        #[serde(default)]
        member_ids: Vec<i64>,
    },
}

/// `PATCH /api/conversations/{id}` (owner of a group only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationRequest {
    pub title: String,
}

/// `POST /api/conversations/{id}/members` (owner of a group only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AddMembersRequest {
    pub user_ids: Vec<i64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Voice,
    /// An image, with its caption (possibly empty) in `body`.
    Photo,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Voice => "voice",
            Self::Photo => "photo",
        }
    }
}

/// A stored file attached to a message: a voice recording (`duration_ms`, `waveform`) or
/// a photo (`width`, `height`, `thumbnail`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Attachment {
    pub id: String,
    pub url: String,
    pub mime: String,
    pub size: i64,
    pub duration_ms: Option<i64>,
    pub waveform: Vec<u8>,
    /// Photos: the stored image's size in pixels (orientation applied).
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Photos: the copy for the timeline, within 480 px a side.
    #[serde(default)]
    pub thumbnail: Option<Thumbnail>,
}

/// A photo's timeline copy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Thumbnail {
    pub url: String,
    pub mime: String,
    pub size: i64,
    pub width: u32,
    pub height: u32,
}

impl Eq for Attachment {}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    /// Position in the conversation: 1, 2, 3… with no gaps.
    pub seq: i64,
    pub sender_id: i64,
    pub kind: MessageKind,
    pub body: String,
    pub attachment: Option<Attachment>,
    pub client_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// The conversation's change number of this message's last change (0: never changed).
    #[serde(default)]
    pub rev: i64,
    /// When the text was last edited.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub edited_at: Option<OffsetDateTime>,
    /// When it was deleted: a tombstone, with no body, attachment or reactions.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<OffsetDateTime>,
    /// The message this one answers, as it is now.
    #[serde(default)]
    pub reply_to: Option<Box<ReplyPreview>>,
    /// Each emoji used, in the order first used, with who used it.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// The members mentioned (`@username` in the text), by id.
    #[serde(default)]
    pub mentions: Vec<i64>,
    /// Voice messages: who played it (never its sender), in the order they first did.
    #[serde(default)]
    pub played_by: Vec<Played>,
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReplyPreview {
    pub id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub kind: MessageKind,
    /// The first line of the text, at most 200 characters (empty for voice and deleted).
    pub excerpt: String,
    /// Voice messages: the length.
    pub duration_ms: Option<i64>,
    /// The answered message was deleted.
    pub deleted: bool,
}

/// One emoji on a message and who reacted with it, earliest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Reaction {
    pub emoji: String,
    pub user_ids: Vec<i64>,
}

/// Who played a voice message, and when they first did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Played {
    pub user_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: OffsetDateTime,
}

/// `POST /api/conversations/{id}/messages`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct SendMessageRequest {
    /// 1–4,000 characters, not only whitespace.
    pub body: String,
    /// Client-generated id (≤ 64 bytes); a retry with the same id returns the stored message.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The id of the message (of this conversation) this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_id: Option<i64>,
}

/// `PATCH /api/conversations/{id}/messages/{seq}`: the new text of your text message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    /// 1–4,000 characters, not only whitespace.
    pub body: String,
}

/// Query of `GET /api/search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchQuery {
    /// Words to find (each must occur; the last may be the start of a word).
    pub q: String,
    /// Only results older than this message id (the next page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_id: Option<i64>,
    /// 1–50, default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Search results, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchResults {
    pub messages: Vec<Message>,
    /// The words searched for, as the server matched them (for highlighting).
    pub terms: Vec<String>,
    /// More (older) results exist: ask again with `before_id` = the last id.
    pub has_more: bool,
}

/// A page of history, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Older messages exist before the first one in this page.
    pub has_more: bool,
    /// Newer messages exist after the last one in this page (only `around_seq` and
    /// `after_seq` pages can have them).
    #[serde(default)]
    pub has_newer: bool,
}

/// `POST /api/conversations/{id}/read`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReadRequest {
    pub seq: i64,
}

/// The caller's read position after `POST …/read` (never moves backwards).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReadState {
    pub conversation_id: i64,
    pub last_read_seq: i64,
    pub unread_count: i64,
}

/// Query of `GET /api/conversations/{id}/messages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (omit for the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<i64>,
    /// Only messages with a greater seq, oldest first (for reading on after a jump).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
    /// The page around this seq: about half the page before it, the rest from it on
    /// (for showing a message in its place). At most one of the three.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around_seq: Option<i64>,
    /// 1–100, default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Query of `GET /api/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserSearchQuery {
    /// Prefix of a username or display name (case-insensitive).
    pub q: String,
    /// At most 50; default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Health {
    pub status: String,
}

/// WebSocket frames from a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    Send {
        conversation_id: i64,
        client_id: String,
        body: String,
        /// The id of the message (of this conversation) this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        reply_to_id: Option<i64>,
    },
    Typing {
        conversation_id: i64,
    },
    Read {
        conversation_id: i64,
        seq: i64,
    },
    /// You played the voice message at `seq` (as `POST …/messages/{seq}/played`).
    Played {
        conversation_id: i64,
        seq: i64,
    },
    Resume {
        /// conversation id → last seq the client has.
        #[serde(with = "int_keys")]
        #[cfg_attr(feature = "ts", ts(type = "Record<string, number>"))]
        cursors: BTreeMap<i64, i64>,
        /// conversation id → last change number the client has (`message_updated` for
        /// every message of those conversations changed since, up to its cursor).
        #[serde(default, with = "int_keys")]
        #[cfg_attr(feature = "ts", ts(type = "Record<string, number>", optional))]
        changes: BTreeMap<i64, i64>,
    },
    Ping,
}

/// WebSocket frames from the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Hello {
        user: Me,
    },
    Ack {
        client_id: String,
        message: Message,
    },
    Message {
        message: Message,
    },
    /// A message already sent was edited, deleted or reacted to: its whole current state.
    MessageUpdated {
        message: Message,
    },
    /// `user_id` played the voice message `message` (its whole current state, with
    /// `played_by`); to every member, live. On resume the change comes as
    /// `message_updated`.
    Played {
        user_id: i64,
        message: Message,
    },
    Presence {
        user_id: i64,
        online: bool,
        #[serde(with = "time::serde::rfc3339::option")]
        #[cfg_attr(feature = "ts", ts(type = "string | null"))]
        last_seen: Option<OffsetDateTime>,
    },
    Typing {
        conversation_id: i64,
        user_id: i64,
    },
    Read {
        conversation_id: i64,
        user_id: i64,
        seq: i64,
    },
    UserUpdated {
        user: User,
    },
    Conversation {
        conversation: Conversation,
    },
    Synced,
    Pong,
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

/// JSON object keys are strings; inside an internally tagged enum serde cannot turn them
/// into integers by itself, so this does it explicitly.
mod int_keys {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<S: Serializer>(map: &BTreeMap<i64, i64>, s: S) -> Result<S::Ok, S::Error> {
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, i64>, D::Error> {
        BTreeMap::<String, i64>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                k.parse::<i64>()
                    .map(|k| (k, v))
                    .map_err(|_| D::Error::custom(format!("conversation id expected, got {k:?}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_events_are_tagged_by_type() {
        let ev: ClientEvent =
            serde_json::from_str(r#"{"type":"resume","cursors":{"7":12}}"#).expect("parse");
        match ev {
            ClientEvent::Resume { cursors, changes } => {
                assert_eq!(cursors.get(&7), Some(&12));
                assert!(changes.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            serde_json::from_str::<ClientEvent>(r#"{"type":"resume","cursors":{"x":1}}"#).is_err()
        );
        let back = serde_json::to_string(&ClientEvent::Resume {
            cursors: BTreeMap::from([(7, 12)]),
            changes: BTreeMap::from([(7, 3)]),
        })
        .expect("serialize");
        assert_eq!(
            back,
            r#"{"type":"resume","cursors":{"7":12},"changes":{"7":3}}"#
        );
        let out = serde_json::to_value(ServerEvent::Synced).expect("serialize");
        assert_eq!(out, serde_json::json!({"type": "synced"}));
    }

    #[test]
    fn create_conversation_is_tagged_by_kind() {
        let req: CreateConversationRequest =
            serde_json::from_str(r#"{"kind":"group","title":"x","member_ids":[2,3]}"#)
                .expect("parse");
        assert!(
            matches!(req, CreateConversationRequest::Group { ref member_ids, .. } if member_ids == &[2, 3])
        );
        assert!(serde_json::from_str::<CreateConversationRequest>(r#"{"kind":"other"}"#).is_err());
    }
}
