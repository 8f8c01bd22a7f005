//! Writes the TypeScript definitions of the wire types into `web-ui/src/api/generated/`
//! (one file per type plus `index.ts`). Run by `scripts/gen-types`; `scripts/test` runs it
//! and fails when the committed files differ, so the web UI cannot drift from the server.
#![cfg(feature = "ts")]

use std::path::Path;

use chatapp_protocol::*;
use ts_rs::{Config, TS};

macro_rules! export_all {
    ($cfg:expr, $index:expr, $($ty:ty),+ $(,)?) => {
        $(
            <$ty as TS>::export_all($cfg).expect(concat!("export ", stringify!($ty)));
            $index.push(stringify!($ty));
        )+
    };
}

#[test]
fn export_typescript_bindings() {
    // `scripts/test` compares a fresh copy with the committed one (CHATAPP_GENERATED_DIR),
    // so that a test run does not touch the web UI's sources.
    let dir = std::env::var_os("CHATAPP_GENERATED_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-ui/src/api/generated"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("create generated dir");
    // Ids and seqs are far below 2^53: plain JSON numbers, not bigint.
    let cfg = Config::new().with_out_dir(&dir).with_large_int("number");
    let mut index: Vec<&str> = Vec::new();
    export_all!(
        &cfg,
        index,
        ErrorBody,
        ErrorDetail,
        User,
        Me,
        RegisterRequest,
        Registration,
        ServerInfo,
        DeleteAccountRequest,
        AdminUser,
        AdminUserQuery,
        AdminUserUpdate,
        CreateUserRequest,
        UserWithPassword,
        InviteState,
        Invite,
        CreateInviteRequest,
        AdminAction,
        LoginRequest,
        AuthResponse,
        UpdateMeRequest,
        ConversationKind,
        Conversation,
        ReadPosition,
        CreateConversationRequest,
        UpdateConversationRequest,
        AddMembersRequest,
        MessageKind,
        Attachment,
        Thumbnail,
        Message,
        ReplyPreview,
        Reaction,
        Played,
        SendMessageRequest,
        EditMessageRequest,
        ConversationSettings,
        SearchQuery,
        SearchResults,
        MessagePage,
        ReadRequest,
        ReadState,
        HistoryQuery,
        UserSearchQuery,
        Health,
        ClientEvent,
        ServerEvent,
    );
    index.sort_unstable();
    let mut out = String::from(
        "// Generated from the Rust `protocol` crate by scripts/gen-types. Do not edit.\n",
    );
    for name in index {
        out.push_str(&format!("export type {{ {name} }} from './{name}';\n"));
    }
    std::fs::write(dir.join("index.ts"), out).expect("write index.ts");
}
