//! Self-hosting on both databases: who may sign up (`--registration open|invite|closed`,
//! invites used up, expired, revoked or wrong), admins (the first account is one; every
//! `/api/admin` route refused to others, route by route from the OpenAPI document), a
//! disabled account's sockets closed with 4001 at once (on one instance and across two),
//! password resets, the record of admin actions, and deleting one's account (files
//! removed, the others' view of the conversation whole, the username free after the grace
//! period).

mod support;

use std::{process::Command, time::Instant};

use chatapp_client::{Api, Upload};

use chatapp_protocol::{
    AdminAction, AdminUser, AdminUserQuery, AdminUserUpdate, CreateInviteRequest,
    CreateUserRequest, Invite, InviteState, RegisterRequest, Registration, ServerInfo,
    UserWithPassword,
};
use reqwest::Method;
use serde_json::{Value, json};
use support::{
    Backend, Raw, Refused, TestServer, Ws,
    media::{blob_count, typed, wav},
};

on_both_backends!(
    an_open_server_takes_anyone_and_the_first_account_is_its_admin,
    a_closed_server_takes_accounts_from_the_cli_and_admins_only,
    an_invite_server_takes_sign_ups_with_a_good_invite_only,
    every_admin_route_is_refused_to_non_admins_and_the_signed_out,
    every_admin_success_answers_with_its_documented_status,
    admins_grant_disable_enable_and_reset_and_each_is_recorded,
    deleting_an_account_keeps_the_conversation_whole_for_the_others,
);

/// A close of a disabled account's socket is pushed by the server when the admin acts;
/// the sweep that would otherwise find it runs once a minute. Waiting this long tells the
/// two apart on any machine, however slow.
const PUSHED: std::time::Duration = std::time::Duration::from_secs(15);

/// Reads `ws` until the server closes it; asserts the close is 4001 and came well before
/// any sweep would have done it.
async fn closed_at_once(ws: &mut Ws, what: &str) {
    let started = Instant::now();
    assert_eq!(
        ws.close_code().await,
        Some(4001),
        "{what}: closed with 4001"
    );
    let took = started.elapsed();
    assert!(took < PUSHED, "{what}: closed after {took:?}, not at once");
    println!("{what}: socket closed {took:?} after the action");
}

fn sign_up(name: &str, invite: Option<&str>) -> RegisterRequest {
    RegisterRequest {
        username: name.to_owned(),
        email: format!("{name}@example.org"),
        password: format!("password-{name}"),
        display_name: None,
        invite: invite.map(str::to_owned),
    }
}

/// `chatapp-server ARGS…` on `server`'s database (while it runs), as the operator runs
/// it; its stdout as JSON (`--json` is added).
#[track_caller]
fn operator(server: &TestServer, args: &[&str]) -> Value {
    let out = Command::new(TestServer::BINARY)
        .env("DATABASE_URL", server.database_url())
        .env("CHATAPP_DATA_DIR", server.data_dir.path())
        .args(args)
        .arg("--json")
        .output()
        .expect("the subcommand runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// How many accounts the database holds.
async fn account_count(server: &TestServer) -> i64 {
    let mut db = server.db().await;
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut db)
        .await
        .expect("count")
}

async fn an_open_server_takes_anyone_and_the_first_account_is_its_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    let info = server
        .api()
        .server_info()
        .await
        .expect("signed out, it answers");
    assert_eq!(info.registration, Registration::Open);
    let (ann, _) = server.register_api("ann").await;
    let (ben, _) = server.register_api("ben").await;
    assert!(ann.me().await.expect("me").is_admin, "the first is admin");
    assert!(!ben.me().await.expect("me").is_admin, "the second is not");
    // An invite given to an open server is not needed, but a wrong one is still wrong.
    server
        .api()
        .register(&sign_up("cat", Some("no-such-code")))
        .await
        .refused(403, "invite_invalid");
    assert_eq!(account_count(&server).await, 2);
}

async fn a_closed_server_takes_accounts_from_the_cli_and_admins_only(backend: Backend) {
    let server = TestServer::start_with(backend, &["--registration", "closed"]).await;
    let info = server.api().server_info().await.expect("server info");
    assert_eq!(info.registration, Registration::Closed);
    for invite in [None, Some("anything")] {
        server
            .api()
            .register(&sign_up("ann", invite))
            .await
            .refused(403, "registration_closed");
    }
    assert_eq!(account_count(&server).await, 0, "nothing was made");

    // The operator makes the first admin with the CLI, while the server runs.
    let made = operator(
        &server,
        &[
            "users",
            "create",
            "root",
            "--email",
            "root@example.org",
            "--admin",
        ],
    );
    let password = made[0]["password"].as_str().expect("a password made");
    let root = server.api();
    root.login("root", password).await.expect("root signs in");
    assert!(root.me().await.expect("me").is_admin);

    // An admin makes an account; its password is shown once, and works.
    let made = root
        .admin_create_user(&CreateUserRequest {
            username: "ann".into(),
            email: "ann@example.org".into(),
            display_name: Some("Ann".into()),
            is_admin: false,
        })
        .await
        .expect("created");
    assert_eq!(made.user.user.display_name, "Ann");
    assert!(made.password.len() >= 16, "{}", made.password);
    let ann = server.api();
    ann.login("ann", &made.password)
        .await
        .expect("ann signs in");
    assert!(!ann.me().await.expect("me").is_admin);
    // Not an admin: refused, and nothing made.
    ann.admin_create_user(&CreateUserRequest {
        username: "ben".into(),
        email: "ben@example.org".into(),
        display_name: None,
        is_admin: true,
    })
    .await
    .refused(403, "admin_only");
    // Taken names are refused as at sign-up.
    root.admin_create_user(&CreateUserRequest {
        username: "ANN".into(),
        email: "other@example.org".into(),
        display_name: None,
        is_admin: false,
    })
    .await
    .refused(409, "username_taken");
    assert_eq!(account_count(&server).await, 2);
}

async fn an_invite_server_takes_sign_ups_with_a_good_invite_only(backend: Backend) {
    let server = TestServer::start_with(backend, &["--registration", "invite"]).await;
    assert_eq!(
        server.api().server_info().await.expect("info").registration,
        Registration::Invite
    );
    server
        .api()
        .register(&sign_up("ann", None))
        .await
        .refused(403, "invite_required");
    server
        .api()
        .register(&sign_up("ann", Some("wrong-code")))
        .await
        .refused(403, "invite_invalid");
    assert_eq!(account_count(&server).await, 0);

    // The operator's first invite (the CLI's); the account made with it is the admin.
    let first = operator(&server, &["invites", "create"]);
    let code = first[0]["code"].as_str().expect("code").to_owned();
    let ann = server.api();
    ann.register(&sign_up("ann", Some(&code)))
        .await
        .expect("ann signs up");
    assert!(ann.me().await.expect("me").is_admin);
    // Single use: used up now.
    server
        .api()
        .register(&sign_up("ben", Some(&code)))
        .await
        .refused(403, "invite_invalid");

    // An admin's invite for two, given as the whole link: two sign up, the third not.
    let two = ann
        .create_invite(&CreateInviteRequest {
            max_uses: Some(2),
            expires_in_hours: Some(24),
        })
        .await
        .expect("invite");
    assert_eq!(
        (two.uses, two.max_uses, &two.state),
        (0, 2, &InviteState::Active)
    );
    assert_eq!(
        two.created_by.as_ref().map(|u| u.username.as_str()),
        Some("ann")
    );
    let link = format!("https://chat.example.org/#/invite/{}", two.code);
    for name in ["ben", "cat"] {
        server
            .api()
            .register(&sign_up(name, Some(&link)))
            .await
            .unwrap_or_else(|e| panic!("{name} signs up: {e}"));
    }
    server
        .api()
        .register(&sign_up("dan", Some(&two.code)))
        .await
        .refused(403, "invite_invalid");

    // Two at once on the last use of an invite: exactly one account is made.
    let last = ann
        .create_invite(&CreateInviteRequest {
            max_uses: Some(1),
            expires_in_hours: None,
        })
        .await
        .expect("invite");
    let (eve_api, fay_api) = (server.api(), server.api());
    let eve_req = sign_up("eve", Some(&last.code));
    let fay_req = sign_up("fay", Some(&last.code));
    let (eve, fay) = tokio::join!(eve_api.register(&eve_req), fay_api.register(&fay_req));
    assert_eq!(
        [eve.is_ok(), fay.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "one of two racing sign-ups on a single-use invite: {eve:?} {fay:?}"
    );
    let lost = if eve.is_ok() { fay } else { eve };
    lost.refused(403, "invite_invalid");

    // Expired (its time moved back in the database) and revoked: refused.
    let expiring = ann
        .create_invite(&CreateInviteRequest::default())
        .await
        .expect("invite");
    let mut db = server.db().await;
    sqlx::query("UPDATE invites SET expires_at = $1 WHERE id = $2")
        .bind(chatapp_server::store::now_ms() - 1000)
        .bind(expiring.id)
        .execute(&mut db)
        .await
        .expect("aged");
    server
        .api()
        .register(&sign_up("gus", Some(&expiring.code)))
        .await
        .refused(403, "invite_invalid");
    let revoked = ann
        .create_invite(&CreateInviteRequest::default())
        .await
        .expect("invite");
    let after = ann.revoke_invite(revoked.id).await.expect("revoked");
    assert_eq!(after.state, InviteState::Revoked);
    assert_eq!(
        ann.revoke_invite(revoked.id).await.expect("again"),
        after,
        "revoking twice changes nothing"
    );
    server
        .api()
        .register(&sign_up("gus", Some(&revoked.code)))
        .await
        .refused(403, "invite_invalid");
    ann.revoke_invite(999_999).await.refused(404, "not_found");

    // Out of range: refused.
    for (max_uses, hours, code) in [
        (Some(0), None, "invalid_uses"),
        (Some(1001), None, "invalid_uses"),
        (None, Some(0), "invalid_expiry"),
        (None, Some(24 * 366), "invalid_expiry"),
    ] {
        ann.create_invite(&CreateInviteRequest {
            max_uses,
            expires_in_hours: hours,
        })
        .await
        .refused(400, code);
    }

    // The list, newest first, with each one's state and uses.
    let states: Vec<(InviteState, i64)> = ann
        .invites()
        .await
        .expect("invites")
        .into_iter()
        .map(|i| (i.state, i.uses))
        .collect();
    assert_eq!(
        states,
        [
            (InviteState::Revoked, 0),
            (InviteState::Expired, 0),
            (InviteState::UsedUp, 1),
            (InviteState::UsedUp, 2),
            (InviteState::UsedUp, 1),
        ]
    );
    // ann, ben, cat and one of eve and fay; nobody else.
    assert_eq!(account_count(&server).await, 4);
    let listed = operator(&server, &["invites", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(5));
    let link = listed[0]["link"].as_str().expect("a link");
    assert!(
        link.ends_with(&format!("#/invite/{}", revoked.code)),
        "{link}"
    );
}

/// A path of the OpenAPI document with its parameters filled in.
fn concrete(path: &str, id: i64) -> String {
    path.replace("{id}", &id.to_string())
}

async fn every_admin_route_is_refused_to_non_admins_and_the_signed_out(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (root, _) = server.register("root").await;
    let (ann, ann_id) = server.register("ann").await;
    let invite = root
        .create_invite(&CreateInviteRequest::default())
        .await
        .expect("invite");
    let openapi = raw.get("/api/openapi.json").await.expect(200);
    let mut checked = Vec::new();
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/admin") {
            continue;
        }
        for method in item.as_object().expect("operations").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let id = if path.contains("invites") {
                invite.id
            } else {
                ann_id
            };
            let uri = concrete(path, id);
            // A body each route would take from an admin: the refusal is for the caller.
            let body = json!({"is_admin": true, "disabled": true, "username": "eve",
                "email": "eve@example.org", "max_uses": 5});
            for (who, caller, status, code) in [
                ("ann (not an admin)", raw.as_user(&ann), 403, "admin_only"),
                ("the signed out", raw.clone(), 401, "unauthorized"),
            ] {
                caller
                    .send(
                        method.clone(),
                        &uri,
                        Some("application/json"),
                        body.to_string(),
                    )
                    .await
                    .expect_error(status, code);
                checked.push(format!("{method} {path} for {who}"));
            }
        }
    }
    assert_eq!(
        checked.len(),
        2 * 8,
        "every admin operation, twice: {checked:#?}"
    );
    // Nothing changed: ann is no admin and enabled, the invite active, no account made.
    let users = root
        .admin_users(&AdminUserQuery::default())
        .await
        .expect("users");
    let listed: Vec<(&str, bool, bool)> = users
        .iter()
        .map(|u| (u.user.username.as_str(), u.is_admin, u.disabled))
        .collect();
    assert_eq!(listed, [("ann", false, false), ("root", true, false)]);
    assert_eq!(
        root.invites().await.expect("invites")[0].state,
        InviteState::Active
    );
    ann.me().await.expect("ann is still signed in");
}

async fn admins_grant_disable_enable_and_reset_and_each_is_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (root, root_id) = server.register_api("root").await;
    let (ann, ann_id) = server.register_api("ann").await;
    let (_ben, ben_id) = server.register_api("ben").await;
    let update = |is_admin, disabled| AdminUserUpdate { is_admin, disabled };

    // Search by the start of a username, display name or email; everyone without one.
    let found = root
        .admin_users(&AdminUserQuery {
            q: Some("AN".into()),
            limit: None,
        })
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].email.as_str(), found[0].user.id),
        ("ann@example.org", ann_id)
    );
    assert_eq!(
        root.admin_users(&AdminUserQuery::default())
            .await
            .expect("all")
            .len(),
        3
    );

    // Not on oneself, not nothing, not an unknown account.
    root.admin_update_user(root_id, &update(Some(false), None))
        .await
        .refused(409, "own_account");
    root.admin_update_user(ann_id, &update(None, None))
        .await
        .refused(400, "nothing_to_change");
    root.admin_update_user(999_999, &update(Some(true), None))
        .await
        .refused(404, "not_found");

    // Grant: ann may act as admin; revoke: no longer.
    let granted = root
        .admin_update_user(ann_id, &update(Some(true), None))
        .await
        .expect("granted");
    assert!(granted.is_admin);
    ann.admin_users(&AdminUserQuery::default())
        .await
        .expect("ann is admin now");
    root.admin_update_user(ann_id, &update(Some(false), None))
        .await
        .expect("revoked");
    ann.admin_users(&AdminUserQuery::default())
        .await
        .refused(403, "admin_only");

    // Disable: ann's open socket closes with 4001 at once, her session is gone, she
    // cannot sign in (told why, with the right password only), nobody finds her.
    let token = ann.token().expect("token");
    let (mut ann_ws, _) = Ws::connect_and_resume(&server.base, &token, &[]).await;
    let disabled = root
        .admin_update_user(ann_id, &update(None, Some(true)))
        .await
        .expect("disabled");
    assert!(disabled.disabled);
    closed_at_once(&mut ann_ws, "disabled").await;
    ann.me().await.refused(401, "unauthorized");
    server
        .api()
        .login("ann", "password-ann")
        .await
        .refused(403, "account_disabled");
    server
        .api()
        .login("ann", "a wrong password")
        .await
        .refused(401, "bad_credentials");
    let (ben, _) = (server.api(), ());
    ben.login("ben", "password-ben").await.expect("ben");
    assert!(
        ben.search_users("ann", None)
            .await
            .expect("search")
            .is_empty(),
        "a disabled account is not found"
    );
    // Disabling twice changes nothing; enabling lets her back in.
    root.admin_update_user(ann_id, &update(None, Some(true)))
        .await
        .expect("again");
    root.admin_update_user(ann_id, &update(None, Some(false)))
        .await
        .expect("enabled");
    let ann = server.api();
    ann.login("ann", "password-ann").await.expect("ann is back");

    // Reset ben's password: his sessions end (the socket with 4001), the new one works.
    let ben_token = ben.token().expect("token");
    let (mut ben_ws, _) = Ws::connect_and_resume(&server.base, &ben_token, &[]).await;
    let reset = root.admin_reset_password(ben_id).await.expect("reset");
    assert_eq!(reset.user.user.id, ben_id);
    closed_at_once(&mut ben_ws, "password reset").await;
    ben.me().await.refused(401, "unauthorized");
    server
        .api()
        .login("ben", "password-ben")
        .await
        .refused(401, "bad_credentials");
    server
        .api()
        .login("ben", &reset.password)
        .await
        .expect("the new password");
    root.admin_reset_password(999_999)
        .await
        .refused(404, "not_found");

    // The last admin cannot leave the server without one.
    root.delete_account("password-root")
        .await
        .refused(409, "last_admin");

    // Every action, newest first: who, what, to whom.
    let actions: Vec<(String, Option<String>, Option<String>)> = root
        .admin_actions()
        .await
        .expect("actions")
        .into_iter()
        .map(|a| {
            (
                a.action,
                a.actor.map(|u| u.username),
                a.target.map(|u| u.username),
            )
        })
        .collect();
    let by_root = |action: &str, target: &str| {
        (
            action.to_owned(),
            Some("root".to_owned()),
            Some(target.to_owned()),
        )
    };
    assert_eq!(
        actions,
        [
            by_root("reset_password", "ben"),
            by_root("enable", "ann"),
            by_root("disable", "ann"),
            by_root("revoke_admin", "ann"),
            by_root("grant_admin", "ann"),
        ]
    );
    ann.admin_actions().await.refused(403, "admin_only");
}

/// A conversation's history as `api` reads it: seq, sender and text of each message.
async fn texts(api: &Api, conversation: i64) -> Vec<(i64, i64, String)> {
    api.history(conversation, None, None)
        .await
        .expect("history")
        .messages
        .into_iter()
        .map(|m| (m.seq, m.sender_id, m.body))
        .collect()
}

async fn deleting_an_account_keeps_the_conversation_whole_for_the_others(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ann_id) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let (cat, cat_id) = server.register_api("cat").await;
    let direct = ann.direct_conversation(ben_id).await.expect("direct").id;
    let group = ann
        .create_group("three", &[ben_id, cat_id])
        .await
        .expect("group")
        .id;
    ann.send_message(direct, "hello ben", None)
        .await
        .expect("sent");
    ben.send_message(direct, "hello ann", None)
        .await
        .expect("sent");
    let voice = ben
        .upload_voice(group, Upload::wav(wav(48_044)))
        .await
        .expect("voice");
    let voice_url = voice.attachment.as_ref().expect("a file").url.clone();
    let jpeg =
        support::media::image_file(server.data_dir.path(), "trip.jpg", "testsrc=size=320x240");
    let photo = ben
        .upload_photo(
            group,
            Upload::new(jpeg, "trip.jpg", "image/jpeg").caption("the trip"),
        )
        .await
        .expect("photo");
    let photo_file = photo.attachment.clone().expect("a file");
    let thumb_url = photo_file.thumbnail.expect("a thumbnail").url;
    ben.send_message(group, "bye all", None)
        .await
        .expect("sent");
    let png = support::media::image_file(server.data_dir.path(), "ben.png", "testsrc=size=300x300");
    ben.put_avatar(Upload::new(png, "ben.png", "image/png"))
        .await
        .expect("avatar");
    let files_before = blob_count(&server);
    assert!(
        files_before >= 5,
        "a voice file, a photo and its thumbnail, two avatar sizes"
    );
    let direct_before = texts(&ann, direct).await;

    // A wrong password: refused, nothing changed.
    ben.delete_account("not the password")
        .await
        .refused(403, "forbidden");
    ben.me().await.expect("still signed in");
    assert_eq!(blob_count(&server), files_before);

    let ben_token = ben.token().expect("token");
    let (mut ben_ws, _) = Ws::connect_and_resume(&server.base, &ben_token, &[]).await;
    let (mut cat_ws, _) =
        Ws::connect_and_resume(&server.base, &cat.token().expect("token"), &[]).await;
    ben.delete_account("password-ben").await.expect("deleted");
    closed_at_once(&mut ben_ws, "account deleted").await;
    server
        .api()
        .with_token(&ben_token)
        .me()
        .await
        .refused(401, "unauthorized");
    server
        .api()
        .login("ben", "password-ben")
        .await
        .refused(401, "bad_credentials");

    // The others: ben is "Deleted user", never online, without avatar; unfindable.
    let seen = ann.user(ben_id).await.expect("still a user");
    assert!(seen.deleted);
    assert_eq!(seen.display_name, "Deleted user");
    assert!(!seen.online && seen.avatar_url.is_none() && seen.avatar_small_url.is_none());
    assert!(
        ann.search_users("ben", None)
            .await
            .expect("search")
            .is_empty()
    );
    // cat sees the voice message and the photo become tombstones, live.
    for seq in [voice.seq, photo.seq] {
        let changed = cat_ws.next_of("message_updated").await;
        assert_eq!(changed["message"]["seq"], seq, "{changed}");
        assert!(!changed["message"]["deleted_at"].is_null(), "{changed}");
        assert!(changed["message"]["attachment"].is_null(), "{changed}");
    }

    // The direct conversation reads as before; in the group, ben's text stays and the
    // voice message is a tombstone without its file.
    assert_eq!(texts(&ann, direct).await, direct_before);
    let group_now = ann
        .history(group, None, None)
        .await
        .expect("history")
        .messages;
    let voice_now = group_now.iter().find(|m| m.seq == voice.seq).expect("kept");
    assert!(voice_now.deleted_at.is_some() && voice_now.attachment.is_none());
    assert!(
        group_now
            .iter()
            .any(|m| m.sender_id == ben_id && m.body == "bye all")
    );
    let photo_now = group_now.iter().find(|m| m.seq == photo.seq).expect("kept");
    assert!(photo_now.deleted_at.is_some() && photo_now.attachment.is_none());
    assert!(photo_now.body.is_empty(), "the caption went with it");
    for url in [&voice_url, &photo_file.url, &thumb_url] {
        ann.download(url).await.refused(404, "not_found");
    }
    assert_eq!(
        blob_count(&server),
        0,
        "the voice file, the photo, its thumbnail and the avatars are gone"
    );
    let _ = ann_id;

    // The username stays taken during the grace period, and is free after it.
    server
        .api()
        .register(&sign_up("ben", None))
        .await
        .refused(409, "username_taken");
    let mut db = server.db().await;
    let long_ago = chatapp_server::store::now_ms()
        - (chatapp_server::store::DELETED_USERNAME_GRACE_DAYS + 1) * 24 * 3600 * 1000;
    sqlx::query("UPDATE users SET deleted_at = $1 WHERE id = $2")
        .bind(long_ago)
        .bind(ben_id)
        .execute(&mut db)
        .await
        .expect("aged");
    let new_ben = server.api();
    let auth = new_ben
        .register(&sign_up("ben", None))
        .await
        .expect("the name is free again");
    assert_ne!(auth.user.id, ben_id, "a new account, not the old one");
    // The old account's messages are still the deleted user's, not the new ben's.
    assert_eq!(
        ann.user(ben_id).await.expect("the old").display_name,
        "Deleted user"
    );
    new_ben
        .history(direct, None, None)
        .await
        .refused(404, "not_found");
    cat_ws.close().await;
}

/// The exact success statuses (`chatapp-client` takes any 2xx), each body its type.
async fn every_admin_success_answers_with_its_documented_status(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (root, _) = server.register("root").await;
    let (_ann, ann_id) = server.register("ann").await;
    let admin = raw.as_user(&root);
    let info: ServerInfo = typed(raw.get("/api/server").await.expect(200));
    assert_eq!(info.registration, Registration::Open);
    let users: Vec<AdminUser> = typed(admin.get("/api/admin/users?q=a&limit=5").await.expect(200));
    assert_eq!(users.len(), 1);
    let made: UserWithPassword = typed(
        admin
            .post(
                "/api/admin/users",
                json!({"username": "cat", "email": "cat@example.org"}),
            )
            .await
            .expect(201),
    );
    assert!(!made.user.is_admin);
    let updated: AdminUser = typed(
        admin
            .patch(
                &format!("/api/admin/users/{ann_id}"),
                json!({"disabled": true}),
            )
            .await
            .expect(200),
    );
    assert!(updated.disabled);
    let reset: UserWithPassword = typed(
        admin
            .post(&format!("/api/admin/users/{ann_id}/password"), json!({}))
            .await
            .expect(200),
    );
    assert_eq!(reset.user.user.id, ann_id);
    let invite: Invite = typed(
        admin
            .post("/api/admin/invites", json!({}))
            .await
            .expect(201),
    );
    let _: Vec<Invite> = typed(admin.get("/api/admin/invites").await.expect(200));
    let revoked: Invite = typed(
        admin
            .delete(&format!("/api/admin/invites/{}", invite.id))
            .await
            .expect(200),
    );
    assert_eq!(revoked.state, InviteState::Revoked);
    let actions: Vec<AdminAction> = typed(admin.get("/api/admin/actions").await.expect(200));
    assert_eq!(actions.len(), 5);
    // Deleting one's account: 204, no body, signed out.
    let (cat, _) = server.register("dan").await;
    let gone = raw
        .as_user(&cat)
        .send(
            Method::DELETE,
            "/api/me",
            Some("application/json"),
            json!({"password": "password-dan"}).to_string(),
        )
        .await;
    assert_eq!(gone.expect(204), Value::Null);
}
