//! Users: search by name prefix and public profiles.

use chatapp_protocol::{UpdateMeRequest, User};

use crate::support::{Backend, Raw, Refused, TestServer};

crate::on_both_backends!(user_search_and_profiles);

async fn user_search_and_profiles(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = server.register("alice").await;
    let (_, alfred_id) = server.register("alfred").await;
    let (bob, _) = server.register("bob").await;
    server.register("al_x").await;
    bob.update_me(&UpdateMeRequest {
        display_name: Some("Albert Bob".into()),
        ..UpdateMeRequest::default()
    })
    .await
    .expect("renamed");

    let names =
        |users: Vec<User>| -> Vec<String> { users.into_iter().map(|u| u.username).collect() };
    let search = |q: &'static str, limit: Option<i64>| {
        let alice = alice.clone();
        async move { names(alice.search_users(q, limit).await.expect("search")) }
    };
    // Prefix of username or display name, case-insensitive, never yourself.
    assert_eq!(search("AL", None).await, ["al_x", "alfred", "bob"]);
    assert_eq!(search("albert", None).await, ["bob"]);
    assert_eq!(search("al", Some(1)).await, ["al_x"]);
    // LIKE wildcards are literal.
    assert_eq!(search("al_", None).await, ["al_x"]);
    assert!(search("%", None).await.is_empty());
    alice
        .search_users("", None)
        .await
        .refused(400, "invalid_query");
    // No `q` at all, and no session: the client always sends both.
    raw.as_user(&alice)
        .get("/api/users")
        .await
        .expect_error(400, "invalid_query");
    raw.get("/api/users?q=al")
        .await
        .expect_error(401, "unauthorized");

    let profile = alice.user(alfred_id).await.expect("profile");
    assert_eq!(profile.username, "alfred");
    assert!(!profile.online);
    // (`last_seen` is present, null until real-time: `User` does not decode without it.)
    // What a profile must not carry is not in the type: checked on the JSON.
    let json = raw
        .as_user(&alice)
        .get(&format!("/api/users/{alfred_id}"))
        .await
        .expect(200);
    assert!(json.get("email").is_none(), "emails are private");
    assert!(json.get("password_hash").is_none());
    alice.user(999_999).await.refused(404, "not_found");
    raw.as_user(&alice)
        .get("/api/users/abc")
        .await
        .expect_error(400, "invalid_path");
    assert_eq!(
        alice.user(alice_id).await.expect("own profile").id,
        alice_id
    );
}
