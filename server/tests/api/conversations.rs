//! Conversations: direct (get-or-create), groups and their members, the list, and
//! what non-members get.

use std::collections::BTreeSet;

use chatapp_protocol::{Conversation, ConversationKind, CreateConversationRequest};
use serde_json::json;

use crate::support::{Backend, Raw, Refused, TestServer};
use crate::{body, typed};

crate::on_both_backends!(
    direct_conversation_is_get_or_create,
    group_membership_rules,
    conversation_list_is_newest_activity_first,
    non_members_get_404_everywhere,
);

fn member_ids(conversation: &Conversation) -> BTreeSet<i64> {
    conversation.members.iter().map(|m| m.id).collect()
}

async fn direct_conversation_is_get_or_create(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (ann, ann_id) = server.register("ann").await;
    let (ben, ben_id) = server.register("ben").await;

    // 201 when it was created, 200 when it existed: statuses the client does not show,
    // so these three requests go raw (with the client's request body).
    let direct = |user_id| body(&CreateConversationRequest::Direct { user_id });
    let created: Conversation = typed(
        raw.as_user(&ann)
            .post("/api/conversations", direct(ben_id))
            .await
            .expect(201),
    );
    assert_eq!(created.kind, ConversationKind::Direct);
    assert_eq!(created.title, None);
    assert_eq!(member_ids(&created), BTreeSet::from([ann_id, ben_id]));
    let again: Conversation = typed(
        raw.as_user(&ann)
            .post("/api/conversations", direct(ben_id))
            .await
            .expect(200),
    );
    let other_side: Conversation = typed(
        raw.as_user(&ben)
            .post("/api/conversations", direct(ann_id))
            .await
            .expect(200),
    );
    assert_eq!(again.id, created.id);
    assert_eq!(other_side.id, created.id);
    let id = created.id;
    assert_eq!(
        ann.direct_conversation(ben_id).await.expect("direct").id,
        id
    );

    ann.direct_conversation(ann_id)
        .await
        .refused(400, "invalid_user");
    ann.direct_conversation(987_654)
        .await
        .refused(404, "not_found");
    // A kind the protocol does not have: no client sends it.
    raw.as_user(&ann)
        .post("/api/conversations", json!({"kind": "channel"}))
        .await
        .expect_error(400, "invalid_body");
    // Direct conversations have no owner and cannot be renamed or left.
    ann.rename_conversation(id, "x")
        .await
        .refused(400, "not_a_group");
    ann.remove_member(id, ann_id)
        .await
        .refused(400, "not_a_group");
}

async fn group_membership_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (owner, owner_id) = server.register_api("olga").await;
    let (member, member_id) = server.register_api("mark").await;
    let (outsider, outsider_id) = server.register_api("otto").await;
    let (_, late_id) = server.register_api("lena").await;

    owner
        .create_group("  ", &[])
        .await
        .refused(400, "invalid_title");
    owner
        .create_group("x", &[424_242])
        .await
        .refused(400, "unknown_user");
    let group = owner
        .create_group("Climbing club", &[member_id, member_id, owner_id])
        .await
        .expect("group");
    let id = group.id;
    assert_eq!(group.owner_id, Some(owner_id));
    assert_eq!(group.title.as_deref(), Some("Climbing club"));
    assert_eq!(
        group.members.len(),
        2,
        "duplicates and the owner counted once"
    );

    // Only the owner renames and adds.
    member
        .rename_conversation(id, "Mine now")
        .await
        .refused(403, "forbidden");
    member
        .add_members(id, &[outsider_id])
        .await
        .refused(403, "forbidden");
    let renamed = owner
        .rename_conversation(id, "Bouldering")
        .await
        .expect("renamed");
    assert_eq!(renamed.title.as_deref(), Some("Bouldering"));
    let grown = owner
        .add_members(id, &[outsider_id, late_id])
        .await
        .expect("added");
    assert_eq!(grown.members.len(), 4);
    outsider.conversation(id).await.expect("a member now");

    // A member cannot remove others; the owner can; anyone can leave.
    member
        .remove_member(id, outsider_id)
        .await
        .refused(403, "forbidden");
    owner
        .remove_member(id, outsider_id)
        .await
        .expect("the owner removes");
    outsider.conversation(id).await.refused(404, "not_found");
    outsider
        .send_message(id, "still here?", None)
        .await
        .refused(404, "not_found");
    member
        .remove_member(id, member_id)
        .await
        .expect("a member leaves");
    member.conversation(id).await.refused(404, "not_found");

    // When the owner leaves, the earliest remaining member becomes the owner.
    owner
        .remove_member(id, owner_id)
        .await
        .expect("the owner leaves");
    let lena = server.api();
    lena.login("lena", "password-lena").await.expect("login");
    let after = lena.conversation(id).await.expect("still a member");
    assert_eq!(after.owner_id, Some(late_id));
    lena.rename_conversation(id, "Lena's")
        .await
        .expect("the new owner renames");
}

async fn conversation_list_is_newest_activity_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ann_id) = server.register_api("ann").await;
    let (_, ben_id) = server.register_api("ben").await;
    let (_, cid) = server.register_api("cid").await;
    let dm = ann.direct_conversation(ben_id).await.expect("direct").id;
    let group = ann
        .create_group("Team", &[ben_id, cid])
        .await
        .expect("group")
        .id;
    let list = ann.conversations().await.expect("list");
    let order: Vec<i64> = list.iter().map(|c| c.id).collect();
    assert_eq!(order, [group, dm]);
    assert_eq!(list[0].last_message, None);

    ann.send_message(dm, "latest", None).await.expect("sent");
    let list = ann.conversations().await.expect("list");
    assert_eq!(list[0].id, dm);
    assert_eq!(
        list[0].last_message.as_ref().map(|m| m.body.as_str()),
        Some("latest")
    );
    assert_eq!(list[0].last_seq, 1);
    assert_eq!(list[1].id, group);
    assert_eq!(member_ids(&list[1]), BTreeSet::from([ann_id, ben_id, cid]));
}

async fn non_members_get_404_everywhere(backend: Backend) {
    let server = TestServer::start_local(backend, &[]).await;
    let raw = Raw::new(&server);
    let (ann, _) = server.register("ann").await;
    let (_, ben_id) = server.register("ben").await;
    let (eve, eve_id) = server.register("eve").await;
    let id = ann.direct_conversation(ben_id).await.expect("direct").id;
    ann.send_message(id, "secret", None).await.expect("sent");

    // Existing-but-foreign and missing conversations answer the same.
    for conv in [id, 99_999] {
        eve.conversation(conv).await.refused(404, "not_found");
        eve.history(conv, None, None)
            .await
            .refused(404, "not_found");
        eve.send_message(conv, "hi", None)
            .await
            .refused(404, "not_found");
        eve.mark_read(conv, 1).await.refused(404, "not_found");
        eve.rename_conversation(conv, "mine")
            .await
            .refused(404, "not_found");
        eve.add_members(conv, &[eve_id])
            .await
            .refused(404, "not_found");
        eve.remove_member(conv, ben_id)
            .await
            .refused(404, "not_found");
    }
    assert!(eve.conversations().await.expect("list").is_empty());
    // Unauthenticated: 401 before anything else (the client does not send without a
    // session).
    raw.get(&format!("/api/conversations/{id}/messages"))
        .await
        .expect_error(401, "unauthorized");
    let page = ann.history(id, None, None).await.expect("history");
    assert_eq!(page.messages.len(), 1, "refused attempts stored nothing");
}
