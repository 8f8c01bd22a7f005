//! The exact success status of every operation. `chatapp-client` accepts any 2xx, so the
//! other modules do not see them: here one realistic flow goes in-process through
//! `support::Raw` (bodies from the protocol types) and checks each status and that each
//! body is its protocol type.

use chatapp_protocol::{
    AddMembersRequest, AuthResponse, Conversation, CreateConversationRequest, Health, LoginRequest,
    Me, Message, MessagePage, ReadRequest, ReadState, RegisterRequest, SendMessageRequest,
    UpdateConversationRequest, UpdateMeRequest, User,
};
use reqwest::Method;
use serde_json::Value;

use crate::browser;
use crate::support::{Backend, Raw, Resp, TestServer};
use crate::{body, typed};

crate::on_both_backends!(every_success_answers_with_its_documented_status);

/// An answer without a body (a 204).
#[track_caller]
fn no_content(resp: Resp) {
    assert_eq!(resp.expect(204), Value::Null, "a 204 has no body");
}

// Every exact success status the tests asserted before they went through
// `chatapp-client` (the old tests/api.rs), each checked below:
//
//   POST   /api/auth/register                           201  AuthResponse
//   POST   /api/auth/login                              200  AuthResponse
//   GET    /api/me                                      200  Me
//   PATCH  /api/me (display name; email or password)    200  Me
//   GET    /api/users?q=…                               200  Vec<User>
//   GET    /api/users/{id} (another user; oneself)      200  User
//   POST   /api/conversations direct, new               201  Conversation
//   POST   /api/conversations direct, existing          200  Conversation (either side)
//   POST   /api/conversations group                     201  Conversation
//   GET    /api/conversations                           200  Vec<Conversation>
//   GET    /api/conversations/{id}                      200  Conversation
//   PATCH  /api/conversations/{id} (rename)             200  Conversation
//   POST   /api/conversations/{id}/members              200  Conversation
//   DELETE /api/conversations/{id}/members/{user}       204  (owner removes another;
//                                                            a member leaves; the owner leaves)
//   POST   /api/conversations/{id}/messages, new        201  Message
//   POST   /api/conversations/{id}/messages, retry      200  Message (the stored one)
//   GET    /api/conversations/{id}/messages             200  MessagePage
//   POST   /api/conversations/{id}/read                 200  ReadState
//   POST   /api/auth/logout                             204
//   GET    /healthz                                     200  Health
//   GET    /api/openapi.json                            200
//   GET    /                                            200  (the web page)
//   and by cookie: login 200, the list 200, create a group 201.
async fn every_success_answers_with_its_documented_status(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);

    // Accounts: register 201, login 200.
    let register = |name: &str| {
        body(&RegisterRequest {
            username: name.into(),
            email: format!("{name}@example.org"),
            password: format!("password-{name}"),
            display_name: None,
            invite: None,
        })
    };
    let mut ids = Vec::new();
    for name in ["ann", "ben", "cid", "dan"] {
        let auth: AuthResponse = typed(
            raw.post("/api/auth/register", register(name))
                .await
                .expect(201),
        );
        assert_eq!(auth.user.username, name);
        ids.push(auth.user.id);
    }
    let [ann_id, ben_id, cid_id, dan_id] = ids[..] else {
        unreachable!("four users")
    };
    let login = |name: &str| {
        body(&LoginRequest {
            login: name.into(),
            password: format!("password-{name}"),
        })
    };
    let mut sessions = Vec::new();
    for name in ["ann", "ben", "dan"] {
        let auth: AuthResponse = typed(raw.post("/api/auth/login", login(name)).await.expect(200));
        assert_eq!(auth.user.username, name);
        sessions.push(raw.with_token(&auth.token));
    }
    let [ann, ben, dan] = &sessions[..] else {
        unreachable!("three sessions")
    };

    // The own account: read 200, change 200 (a plain field, and one that needs the
    // password).
    let me: Me = typed(ann.get("/api/me").await.expect(200));
    assert_eq!(me.id, ann_id);
    let me: Me = typed(
        ann.patch(
            "/api/me",
            body(&UpdateMeRequest {
                display_name: Some("Annie".into()),
                ..UpdateMeRequest::default()
            }),
        )
        .await
        .expect(200),
    );
    assert_eq!(me.display_name, "Annie");
    let me: Me = typed(
        ann.patch(
            "/api/me",
            body(&UpdateMeRequest {
                email: Some("annie@example.org".into()),
                current_password: Some("password-ann".into()),
                ..UpdateMeRequest::default()
            }),
        )
        .await
        .expect(200),
    );
    assert_eq!(me.email, "annie@example.org");

    // Users: search 200, a profile 200 (another's and one's own).
    let found: Vec<User> = typed(ann.get("/api/users?q=BE").await.expect(200));
    assert_eq!(
        found.iter().map(|u| u.id).collect::<Vec<_>>(),
        [ben_id],
        "{found:?}"
    );
    let profile: User = typed(ann.get(&format!("/api/users/{ben_id}")).await.expect(200));
    assert_eq!(profile.username, "ben");
    let own: User = typed(ann.get(&format!("/api/users/{ann_id}")).await.expect(200));
    assert_eq!(own.id, ann_id);

    // A direct conversation: 201 when created, 200 when it existed (from either side).
    let direct = |user_id| body(&CreateConversationRequest::Direct { user_id });
    let dm: Conversation = typed(
        ann.post("/api/conversations", direct(ben_id))
            .await
            .expect(201),
    );
    let again: Conversation = typed(
        ann.post("/api/conversations", direct(ben_id))
            .await
            .expect(200),
    );
    let other_side: Conversation = typed(
        ben.post("/api/conversations", direct(ann_id))
            .await
            .expect(200),
    );
    assert_eq!((again.id, other_side.id), (dm.id, dm.id));

    // A group: create 201, list 200, get 200, rename 200, add members 200.
    let group: Conversation = typed(
        ann.post(
            "/api/conversations",
            body(&CreateConversationRequest::Group {
                title: "Climbing club".into(),
                member_ids: vec![ben_id],
            }),
        )
        .await
        .expect(201),
    );
    let gid = group.id;
    assert_eq!(group.owner_id, Some(ann_id));
    let list: Vec<Conversation> = typed(ann.get("/api/conversations").await.expect(200));
    assert_eq!(list.len(), 2);
    let single: Conversation = typed(
        ann.get(&format!("/api/conversations/{gid}"))
            .await
            .expect(200),
    );
    assert_eq!(single.id, gid);
    let renamed: Conversation = typed(
        ann.patch(
            &format!("/api/conversations/{gid}"),
            body(&UpdateConversationRequest {
                title: "Bouldering".into(),
            }),
        )
        .await
        .expect(200),
    );
    assert_eq!(renamed.title.as_deref(), Some("Bouldering"));
    let grown: Conversation = typed(
        ann.post(
            &format!("/api/conversations/{gid}/members"),
            body(&AddMembersRequest {
                user_ids: vec![cid_id, dan_id],
            }),
        )
        .await
        .expect(200),
    );
    assert_eq!(grown.members.len(), 4);

    // Messages: send 201, a retry 200 (the stored message), history 200, mark read 200.
    let messages = format!("/api/conversations/{gid}/messages");
    let hello = body(&SendMessageRequest {
        body: "hello".into(),
        client_id: Some("c-1".into()),
        reply_to_id: None,
    });
    let sent: Message = typed(ann.post(&messages, hello.clone()).await.expect(201));
    assert_eq!(sent.seq, 1);
    let retry: Message = typed(ann.post(&messages, hello).await.expect(200));
    assert_eq!(retry, sent);
    let page: MessagePage = typed(ben.get(&messages).await.expect(200));
    assert_eq!(page.messages, [sent]);
    let read: ReadState = typed(
        ben.post(
            &format!("/api/conversations/{gid}/read"),
            body(&ReadRequest { seq: 1 }),
        )
        .await
        .expect(200),
    );
    assert_eq!((read.last_read_seq, read.unread_count), (1, 0));

    // Members: the owner removes another 204, a member leaves 204, the owner leaves 204.
    let member = |user_id: i64| format!("/api/conversations/{gid}/members/{user_id}");
    no_content(ann.delete(&member(cid_id)).await);
    no_content(ben.delete(&member(ben_id)).await);
    no_content(ann.delete(&member(ann_id)).await);
    let after: Conversation = typed(
        dan.get(&format!("/api/conversations/{gid}"))
            .await
            .expect(200),
    );
    assert_eq!(
        after.owner_id,
        Some(dan_id),
        "the earliest remaining member"
    );

    // The rest of the surface: health 200, the OpenAPI document 200, the page 200.
    let health: Health = typed(raw.get("/healthz").await.expect(200));
    assert_eq!(health.status, "ok");
    let openapi = raw.get("/api/openapi.json").await.expect(200);
    assert!(openapi["paths"].is_object(), "{openapi}");
    let web_page = browser(&server, Method::GET, "/", &[], None).await;
    assert_eq!(web_page.status, 200);

    // A browser by cookie: login 200, the list 200, create 201.
    let by_cookie = browser(
        &server,
        Method::POST,
        "/api/auth/login",
        &[("origin", &server.base)],
        Some(login("ben").to_string()),
    )
    .await;
    let cookie = by_cookie
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let v = v.to_str().expect("cookie");
            v.split(';').next().expect("pair").to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ");
    let auth: AuthResponse = typed(by_cookie.expect(200));
    let list: Vec<Conversation> = typed(
        browser(
            &server,
            Method::GET,
            "/api/conversations",
            &[("cookie", &cookie)],
            None,
        )
        .await
        .expect(200),
    );
    assert_eq!(list.len(), 1, "ben left the group: the direct one");
    let created: Conversation = typed(
        browser(
            &server,
            Method::POST,
            "/api/conversations",
            &[
                ("cookie", &cookie),
                ("origin", &server.base),
                ("x-csrf-token", &auth.csrf_token),
            ],
            Some(
                body(&CreateConversationRequest::Group {
                    title: "via cookie".into(),
                    member_ids: Vec::new(),
                })
                .to_string(),
            ),
        )
        .await
        .expect(201),
    );
    assert_eq!(created.owner_id, Some(ben_id));

    // Logout 204; the session is over.
    no_content(
        ann.send(
            Method::POST,
            "/api/auth/logout",
            None,
            axum::body::Body::empty(),
        )
        .await,
    );
    ann.get("/api/me").await.expect_error(401, "unauthorized");
}
