//! Messages that change after they are sent (edit, delete, react, played), replies, mentions,
//! mute and search, over the real API and WebSocket on SQLite and PostgreSQL: each change
//! live to the other members, each change made while someone was away replayed to them
//! once on `resume`, the refusals, and search following edits, deletions and membership.

mod support;

use std::collections::BTreeMap;

use chatapp_client::Upload;
use chatapp_protocol::{ClientEvent, HistoryQuery, Message};
use serde_json::Value;
use support::{Backend, Refused, TestServer, Ws, media::blob_count, media::wav};

on_both_backends!(
    changes_are_live_and_resumed_once,
    changes_are_refused_unless_allowed_and_retries_change_nothing,
    replies_quote_the_message_and_history_opens_around_it,
    search_follows_edits_deletions_and_membership,
    mentions_are_counted_and_mute_follows_the_person,
    a_deleted_voice_message_loses_its_file,
    played_voice_messages_are_told_live_resumed_and_kept,
);

fn message(ev: &Value) -> Message {
    serde_json::from_value(ev["message"].clone()).expect("a message")
}

/// Connects and resumes after `cursors` (messages) and `changes`; what was replayed.
async fn resume(
    server: &TestServer,
    token: &str,
    cursors: &[(i64, i64)],
    changes: &[(i64, i64)],
) -> (Ws, Vec<Value>) {
    let mut ws = Ws::connect(&server.base, token).await;
    ws.send(&ClientEvent::Resume {
        cursors: cursors.iter().copied().collect(),
        changes: changes.iter().copied().collect::<BTreeMap<_, _>>(),
    })
    .await;
    let mut replayed = Vec::new();
    loop {
        let ev = ws.next_json().await;
        if ev["type"] == "synced" {
            return (ws, replayed);
        }
        replayed.push(ev);
    }
}

async fn changes_are_live_and_resumed_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ann_id) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let conv = ann.create_group("club", &[ben_id]).await.expect("group").id;
    let m1 = ann
        .send_message(conv, "hello wrold", None)
        .await
        .expect("m1");
    let m2 = ann.send_message(conv, "second", None).await.expect("m2");
    let ben_token = ben.token().expect("token");
    let (mut ben_ws, replayed) = resume(&server, &ben_token, &[(conv, 2)], &[(conv, 0)]).await;
    assert!(replayed.is_empty(), "{replayed:?}");

    // Live: an edit, a reaction and its withdrawal reach ben, each once, in order.
    let edited = ann
        .edit_message(conv, 1, "hello world")
        .await
        .expect("edit");
    assert_eq!(edited.body, "hello world");
    assert!(edited.edited_at.is_some());
    assert_eq!(edited.rev, 1);
    let ev = ben_ws.next_json().await;
    assert_eq!(ev["type"], "message_updated", "{ev}");
    assert_eq!(message(&ev), edited);
    let reacted = ben.react(conv, 2, "👍", true).await.expect("react");
    assert_eq!(reacted.reactions.len(), 1);
    assert_eq!(reacted.reactions[0].emoji, "👍");
    assert_eq!(reacted.reactions[0].user_ids, [ben_id]);
    assert_eq!(message(&ben_ws.next_of("message_updated").await), reacted);
    let ann_too = ann.react(conv, 2, "👍", true).await.expect("react");
    assert_eq!(ann_too.reactions[0].user_ids, [ben_id, ann_id]);
    assert_eq!(message(&ben_ws.next_of("message_updated").await).rev, 3);
    ben_ws.expect_quiet().await;
    ben_ws.close().await;

    // Away: a deletion, a reaction, a new reply that is then edited.
    let deleted = ann.delete_message(conv, 1).await.expect("delete");
    assert!(deleted.deleted_at.is_some());
    assert_eq!(deleted.body, "");
    let hearts = ann.react(conv, 2, "❤", true).await.expect("react");
    assert_eq!(hearts.reactions[1].emoji, "❤️", "stored fully qualified");
    let reply = ann
        .send_reply(conv, "a reply", None, m2.id)
        .await
        .expect("reply");
    ann.edit_message(conv, reply.seq, "a reply, edited")
        .await
        .expect("edit");

    // Back: the new message as it is now, then each changed older message once, in
    // change order, then synced; then nothing more.
    let (mut ben_ws, replayed) = resume(&server, &ben_token, &[(conv, 2)], &[(conv, 3)]).await;
    let kinds: Vec<(&str, i64)> = replayed
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default(),
                e["message"]["seq"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("message", 3),
            ("message_updated", 1),
            ("message_updated", 2)
        ],
        "{replayed:#?}"
    );
    let new = message(&replayed[0]);
    assert_eq!(new.body, "a reply, edited");
    assert_eq!(new.reply_to.as_ref().map(|r| r.id), Some(m2.id));
    assert_eq!(message(&replayed[1]), deleted);
    assert_eq!(message(&replayed[2]), hearts);
    ben_ws.expect_quiet().await;
    ben_ws.close().await;

    // A client with every change gets none again; the conversation says where it is.
    let last_change = ben.conversation(conv).await.expect("conv").last_change;
    assert_eq!(last_change, 6);
    let (ws, replayed) = resume(&server, &ben_token, &[(conv, 3)], &[(conv, 6)]).await;
    assert!(replayed.is_empty(), "{replayed:?}");
    ws.close().await;

    // History shows every message as it is now.
    let page = ben.history(conv, None, None).await.expect("history");
    assert_eq!(page.messages[0], deleted);
    assert_eq!(page.messages[1], hearts);
    assert_eq!(page.messages[2].body, "a reply, edited");
    assert_ne!(m1.rev, page.messages[0].rev);
}

async fn changes_are_refused_unless_allowed_and_retries_change_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let (eve, _) = server.register_api("eve").await;
    let direct = ann.direct_conversation(ben_id).await.expect("direct").id;
    let other = eve.direct_conversation(ben_id).await.expect("other").id;
    let elsewhere = eve.send_message(other, "eve's", None).await.expect("sent");
    let mine = ann.send_message(direct, "ann's", None).await.expect("sent");
    let theirs = ben.send_message(direct, "ben's", None).await.expect("sent");

    // Not a member: as if the conversation did not exist.
    eve.edit_message(direct, 1, "x")
        .await
        .refused(404, "not_found");
    eve.delete_message(direct, 1)
        .await
        .refused(404, "not_found");
    eve.react(direct, 1, "👍", true)
        .await
        .refused(404, "not_found");
    // Not the author (and not a group's owner).
    ben.edit_message(direct, mine.seq, "mine now")
        .await
        .refused(403, "forbidden");
    ben.delete_message(direct, mine.seq)
        .await
        .refused(403, "forbidden");
    // No such message; not an emoji; an empty text.
    ann.edit_message(direct, 99, "x")
        .await
        .refused(404, "not_found");
    ann.react(direct, 99, "👍", true)
        .await
        .refused(404, "not_found");
    for bad in ["a", "👍👍", ":+1:", " "] {
        ann.react(direct, mine.seq, bad, true)
            .await
            .refused(400, "invalid_emoji");
    }
    ann.edit_message(direct, mine.seq, "  ")
        .await
        .refused(400, "empty_body");
    // A reply to a message of another conversation, or to one that does not exist.
    ann.send_reply(direct, "re", None, elsewhere.id)
        .await
        .refused(400, "invalid_reply");
    ann.send_reply(direct, "re", None, i64::MAX)
        .await
        .refused(400, "invalid_reply");
    // An empty search.
    for q in ["", "  ", "*&:"] {
        ann.search(q, None, None).await.refused(400, "empty_query");
    }
    // Nothing of that changed anything.
    let conversation = ann.conversation(direct).await.expect("conv");
    assert_eq!(conversation.last_change, 0);
    assert_eq!(conversation.last_seq, 2);
    let page = ann.history(direct, None, None).await.expect("history");
    assert_eq!(page.messages, [mine.clone(), theirs.clone()]);

    // Retries change nothing: the same text, the same reaction, a second deletion.
    let edited = ann
        .edit_message(direct, mine.seq, "fixed")
        .await
        .expect("edit");
    assert_eq!(
        ann.edit_message(direct, mine.seq, "fixed")
            .await
            .expect("again"),
        edited
    );
    let liked = ann
        .react(direct, theirs.seq, "👍", true)
        .await
        .expect("like");
    assert_eq!(
        ann.react(direct, theirs.seq, "👍", true)
            .await
            .expect("again"),
        liked
    );
    let unliked = ann
        .react(direct, theirs.seq, "👍", false)
        .await
        .expect("unlike");
    assert!(unliked.reactions.is_empty());
    assert_eq!(
        ann.react(direct, theirs.seq, "👍", false)
            .await
            .expect("again"),
        unliked
    );
    let gone = ben
        .delete_message(direct, theirs.seq)
        .await
        .expect("delete");
    assert_eq!(
        ben.delete_message(direct, theirs.seq).await.expect("again"),
        gone
    );
    assert_eq!(ann.conversation(direct).await.expect("conv").last_change, 4);
    // A deleted message takes no edit or reaction.
    ben.edit_message(direct, theirs.seq, "back")
        .await
        .refused(409, "message_deleted");
    ann.react(direct, theirs.seq, "👍", true)
        .await
        .refused(409, "message_deleted");

    // In a group, the owner may delete anyone's message; the others only their own.
    let group = ann.create_group("g", &[ben_id]).await.expect("group").id;
    ben.send_message(group, "ben in g", None)
        .await
        .expect("sent");
    ann.send_message(group, "ann in g", None)
        .await
        .expect("sent");
    ben.delete_message(group, 2).await.refused(403, "forbidden");
    assert!(
        ann.delete_message(group, 1)
            .await
            .expect("owner")
            .deleted_at
            .is_some()
    );
}

async fn replies_quote_the_message_and_history_opens_around_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let conv = ann.direct_conversation(ben_id).await.expect("direct").id;
    let first = ann
        .send_message(conv, "\n  the first line  \nthe second", None)
        .await
        .expect("sent");
    for i in 2..=120 {
        ben.send_message(conv, &format!("m{i}"), None)
            .await
            .expect("sent");
    }
    let reply = ben
        .send_reply(conv, "answering", Some("r-1"), first.id)
        .await
        .expect("reply");
    let quoted = reply.reply_to.clone().expect("a quote");
    assert_eq!(
        (quoted.id, quoted.seq, quoted.sender_id),
        (first.id, 1, first.sender_id)
    );
    assert_eq!(quoted.excerpt, "the first line");
    assert!(!quoted.deleted);
    // A retry answers the same reply, quote and all.
    assert_eq!(
        ben.send_reply(conv, "answering", Some("r-1"), first.id)
            .await
            .expect("retry"),
        reply
    );
    // Over the WebSocket too.
    let (mut ws, _) = Ws::connect_and_resume(&server.base, &ben.token().expect("t"), &[]).await;
    ws.send(&ClientEvent::Send {
        conversation_id: conv,
        client_id: "r-2".into(),
        body: "again".into(),
        reply_to_id: Some(first.id),
    })
    .await;
    let ack = ws.next_of("ack").await;
    assert_eq!(message(&ack).reply_to.map(|r| r.seq), Some(1));
    ws.close().await;

    // The quoted message deleted: the reply shows the tombstone.
    ann.delete_message(conv, 1).await.expect("delete");
    let page = ann.history(conv, None, Some(2)).await.expect("history");
    let quote = page.messages[0].reply_to.clone().expect("quote");
    assert!(quote.deleted);
    assert_eq!(quote.excerpt, "");
    ben.send_reply(conv, "to nothing", None, first.id)
        .await
        .refused(400, "invalid_reply");

    // Jumping to the quoted message: the page around it, then on from there.
    let around = ann
        .history_page(
            conv,
            &HistoryQuery {
                around_seq: Some(60),
                limit: Some(20),
                ..HistoryQuery::default()
            },
        )
        .await
        .expect("around");
    let seqs: Vec<i64> = around.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (50..70).collect::<Vec<_>>());
    assert!(around.has_more && around.has_newer);
    let start = ann
        .history_page(
            conv,
            &HistoryQuery {
                around_seq: Some(1),
                limit: Some(10),
                ..HistoryQuery::default()
            },
        )
        .await
        .expect("around the first");
    assert_eq!(start.messages.first().map(|m| m.seq), Some(1));
    assert!(!start.has_more && start.has_newer);
    let after = ann
        .history_page(
            conv,
            &HistoryQuery {
                after_seq: Some(115),
                limit: Some(50),
                ..HistoryQuery::default()
            },
        )
        .await
        .expect("after");
    let seqs: Vec<i64> = after.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (116..=122).collect::<Vec<_>>());
    assert!(after.has_more && !after.has_newer);
}

async fn search_follows_edits_deletions_and_membership(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ann_id) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let club = ann.create_group("club", &[ben_id]).await.expect("group").id;
    let private = ann.create_group("ann only", &[]).await.expect("group").id;
    ann.send_message(club, "Picnic on Saturday at the lake", None)
        .await
        .expect("sent");
    ann.send_message(private, "picnic secret", None)
        .await
        .expect("sent");
    ben.send_message(club, "Café crème after the picnic?", None)
        .await
        .expect("sent");
    let bodies = |r: &chatapp_protocol::SearchResults| -> Vec<String> {
        r.messages.iter().map(|m| m.body.clone()).collect()
    };

    // Newest first, only ben's conversations, every word, the last one as a prefix,
    // case and accents folded on SQLite (PostgreSQL's simple configuration folds case).
    let found = ben.search("PICNIC", None, None).await.expect("search");
    assert_eq!(
        bodies(&found),
        [
            "Café crème after the picnic?",
            "Picnic on Saturday at the lake"
        ]
    );
    assert_eq!(found.terms, ["picnic"]);
    let found = ben
        .search("picnic satur", None, None)
        .await
        .expect("search");
    assert_eq!(bodies(&found), ["Picnic on Saturday at the lake"]);
    let found = ben.search("crème", None, None).await.expect("search");
    assert_eq!(found.messages.len(), 1);
    // Paging.
    let page = ben.search("picnic", None, Some(1)).await.expect("page 1");
    assert!(page.has_more);
    let next = ben
        .search("picnic", Some(page.messages[0].id), Some(1))
        .await
        .expect("page 2");
    assert_eq!(bodies(&next), ["Picnic on Saturday at the lake"]);
    assert!(!next.has_more);

    // An edit is found by its new words, not its old ones; a deleted message never.
    ann.edit_message(club, 1, "Barbecue on Sunday at the lake")
        .await
        .expect("edit");
    assert_eq!(
        bodies(&ben.search("picnic", None, None).await.expect("search")),
        ["Café crème after the picnic?"]
    );
    assert_eq!(
        ben.search("barbecue", None, None)
            .await
            .expect("search")
            .messages
            .len(),
        1
    );
    ben.delete_message(club, 2).await.expect("delete");
    assert!(
        ben.search("picnic", None, None)
            .await
            .expect("search")
            .messages
            .is_empty()
    );

    // Removed: nothing of the club; back again: only what was said since.
    ann.remove_member(club, ben_id).await.expect("removed");
    ann.send_message(club, "barbecue without ben", None)
        .await
        .expect("sent");
    assert!(
        ben.search("barbecue", None, None)
            .await
            .expect("search")
            .messages
            .is_empty()
    );
    ann.add_members(club, &[ben_id]).await.expect("back");
    ann.send_message(club, "barbecue with ben again", None)
        .await
        .expect("sent");
    assert_eq!(
        bodies(&ben.search("barbecue", None, None).await.expect("search")),
        ["barbecue with ben again"]
    );
    assert_eq!(
        ann.search("barbecue", None, None)
            .await
            .expect("search")
            .messages
            .len(),
        3
    );
    let _ = ann_id;
}

async fn mentions_are_counted_and_mute_follows_the_person(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let (eve, eve_id) = server.register_api("eve").await;
    let club = ann.create_group("club", &[ben_id]).await.expect("group").id;
    let (mut ben_ws, _) =
        Ws::connect_and_resume(&server.base, &ben.token().expect("t"), &[(club, 0)]).await;

    // Only members are mentioned, by id; mail addresses are not mentions.
    let sent = ann
        .send_message(club, "@Ben and @eve: see ann@example.org", None)
        .await
        .expect("sent");
    assert_eq!(sent.mentions, [ben_id]);
    assert_eq!(message(&ben_ws.next_of("message").await).mentions, [ben_id]);
    ann.send_message(club, "no mention", None)
        .await
        .expect("sent");
    let conv = ben.conversation(club).await.expect("conv");
    assert_eq!((conv.unread_count, conv.unread_mentions), (2, 1));
    // An edit takes the mention back; another adds one.
    ann.edit_message(club, 1, "Ben and eve")
        .await
        .expect("edit");
    assert_eq!(
        ben.conversation(club).await.expect("conv").unread_mentions,
        0
    );
    ann.edit_message(club, 2, "now @ben").await.expect("edit");
    assert_eq!(
        ben.conversation(club).await.expect("conv").unread_mentions,
        1
    );
    // Reading clears the count.
    ben.mark_read(club, 2).await.expect("read");
    assert_eq!(
        ben.conversation(club).await.expect("conv").unread_mentions,
        0
    );

    // Mute: for ben alone, on all his connections, refused to outsiders.
    assert!(!ben.conversation(club).await.expect("conv").muted);
    let muted = ben.set_muted(club, true).await.expect("mute");
    assert!(muted.muted);
    let ev = ben_ws.next_of("conversation").await;
    assert_eq!(ev["conversation"]["muted"], true, "{ev}");
    assert!(!ann.conversation(club).await.expect("conv").muted);
    assert!(ben.conversations().await.expect("list")[0].muted);
    eve.set_muted(club, true).await.refused(404, "not_found");
    assert!(!ben.set_muted(club, false).await.expect("unmute").muted);
    let _ = eve_id;
    ben_ws.close().await;
}

async fn a_deleted_voice_message_loses_its_file(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let conv = ann.direct_conversation(ben_id).await.expect("direct").id;
    let before = blob_count(&server);
    let voice = ann
        .upload_voice(conv, Upload::wav(wav(48_000)))
        .await
        .expect("voice");
    let url = voice.attachment.clone().expect("file").url;
    assert_eq!(blob_count(&server), before + 1);
    ben.download(&url).await.expect("ben hears it");
    ann.edit_message(conv, voice.seq, "words")
        .await
        .refused(400, "not_text");

    // A voice message may answer one; a reply to another conversation's message is refused
    // before anything is stored.
    let question = ben
        .send_message(conv, "what did you hear?", None)
        .await
        .expect("sent");
    let answer = ann
        .upload_voice(
            conv,
            Upload::wav(wav(16_000))
                .client_id("v-reply")
                .reply_to(Some(question.id)),
        )
        .await
        .expect("voice reply");
    let quote = answer.reply_to.clone().expect("quoted");
    assert_eq!(
        (quote.id, quote.excerpt.as_str()),
        (question.id, "what did you hear?")
    );
    let page = ben.history(conv, None, Some(1)).await.expect("history");
    assert_eq!(
        page.messages[0].reply_to.as_ref().map(|r| r.id),
        Some(question.id)
    );
    let (carl, _) = server.register_api("carl").await;
    let elsewhere = carl.direct_conversation(ben_id).await.expect("direct").id;
    let other = carl
        .send_message(elsewhere, "not yours", None)
        .await
        .expect("sent");
    let stored = blob_count(&server);
    let last = ann
        .history(conv, None, Some(1))
        .await
        .expect("history")
        .messages[0]
        .id;
    ann.upload_voice(conv, Upload::wav(wav(16_000)).reply_to(Some(other.id)))
        .await
        .refused(400, "invalid_reply");
    assert_eq!(blob_count(&server), stored, "nothing stored");
    assert_eq!(
        ann.history(conv, None, Some(1))
            .await
            .expect("history")
            .messages[0]
            .id,
        last
    );
    ann.delete_message(conv, answer.seq).await.expect("deleted");
    let gone = ann.delete_message(conv, voice.seq).await.expect("deleted");
    assert!(gone.attachment.is_none());
    assert_eq!(blob_count(&server), before, "the file left the blob store");
    ben.download(&url).await.refused(404, "not_found");
}

async fn played_voice_messages_are_told_live_resumed_and_kept(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, ann_id) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let (cat, cat_id) = server.register_api("cat").await;
    let (eve, _) = server.register_api("eve").await;
    let group = ann
        .create_group("three", &[ben_id, cat_id])
        .await
        .expect("group")
        .id;
    let voice = ann
        .upload_voice(group, Upload::wav(wav(48_044)))
        .await
        .expect("voice");
    let text = ann
        .send_message(group, "and text", None)
        .await
        .expect("text");
    let ben_voice = ben
        .upload_voice(group, Upload::wav(wav(48_044)))
        .await
        .expect("ben's voice");
    assert!(voice.played_by.is_empty());
    let ann_token = ann.token().expect("token");
    let cat_token = cat.token().expect("token");
    let (mut ann_ws, _) = resume(&server, &ann_token, &[(group, 3)], &[(group, 0)]).await;
    let (mut cat_ws, _) = resume(&server, &cat_token, &[(group, 3)], &[(group, 0)]).await;

    // ben plays ann's voice message (REST): the sender and every member hear `played`.
    let played = ben.mark_played(group, voice.seq).await.expect("played");
    assert_eq!(played.played_by.len(), 1);
    assert_eq!(played.played_by[0].user_id, ben_id);
    for ws in [&mut ann_ws, &mut cat_ws] {
        let ev = ws.next_of("played").await;
        assert_eq!(ev["user_id"], ben_id);
        assert_eq!(message(&ev), played);
    }
    // Again: nothing changes, nobody is told.
    let again = ben.mark_played(group, voice.seq).await.expect("again");
    assert_eq!(again, played, "marking twice changes nothing");
    ann_ws.expect_quiet_but(&["presence"]).await;

    // Over the WebSocket: cat plays it too, while ann is away.
    ann_ws.close().await;
    let mut cat_out = Ws::connect(&server.base, &cat_token).await;
    cat_out
        .send(&ClientEvent::Resume {
            cursors: [(group, 3)].into_iter().collect(),
            changes: [(group, played.rev)].into_iter().collect(),
        })
        .await;
    cat_out.next_of("synced").await;
    cat_out
        .send(&ClientEvent::Played {
            conversation_id: group,
            seq: voice.seq,
        })
        .await;
    let by_cat = message(&cat_ws.next_of("played").await);
    assert_eq!(
        by_cat
            .played_by
            .iter()
            .map(|p| p.user_id)
            .collect::<Vec<_>>(),
        [ben_id, cat_id],
        "in the order they played it"
    );
    cat_out.close().await;

    // ann comes back: the change is replayed once (as `message_updated`, the whole
    // message), and history carries who played it.
    let (mut ann_ws, replayed) =
        resume(&server, &ann_token, &[(group, 3)], &[(group, played.rev)]).await;
    let replayed: Vec<Value> = replayed
        .into_iter()
        .filter(|e| e["type"] != "presence")
        .collect();
    assert_eq!(replayed.len(), 1, "{replayed:#?}");
    assert_eq!(replayed[0]["type"], "message_updated");
    assert_eq!(message(&replayed[0]), by_cat);
    ann_ws.expect_quiet_but(&["presence"]).await;
    let page = ann.history(group, None, None).await.expect("history");
    assert_eq!(page.messages[0], by_cat);

    // Refused, and nothing changes: your own, a text message, a non-member, unknown.
    ann.mark_played(group, voice.seq)
        .await
        .refused(400, "own_message");
    ben.mark_played(group, text.seq)
        .await
        .refused(400, "not_voice");
    eve.mark_played(group, voice.seq)
        .await
        .refused(404, "not_found");
    ben.mark_played(group, 99).await.refused(404, "not_found");
    ann.mark_played(group, ben_voice.seq)
        .await
        .expect("ann plays ben's");
    ann.delete_message(group, voice.seq).await.expect("deleted");
    ben.mark_played(group, voice.seq)
        .await
        .refused(409, "message_deleted");
    let _ = ann_id;
    // Refused over the socket too: an error frame, nothing else.
    let (mut eve_ws, _) = resume(&server, &eve.token().expect("token"), &[], &[]).await;
    eve_ws
        .send(&ClientEvent::Played {
            conversation_id: group,
            seq: ben_voice.seq,
        })
        .await;
    let err = eve_ws.next_of("error").await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("not_found")),
        "{err}"
    );
    let page = ann.history(group, None, None).await.expect("history");
    let deleted = &page.messages[0];
    assert!(
        deleted.played_by.is_empty(),
        "a tombstone keeps no receipts"
    );
    assert_eq!(
        page.messages[2]
            .played_by
            .iter()
            .map(|p| p.user_id)
            .collect::<Vec<_>>(),
        [ann_id]
    );
    ann_ws.close().await;
}
