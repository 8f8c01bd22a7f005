//! Read positions: marking read, unread counts, everyone's position in a conversation.

use chatapp_client::Api;
use chatapp_protocol::ReadPosition;

use crate::support::{Backend, Refused, TestServer};

crate::on_both_backends!(read_position_feeds_unread_counts);

/// The unread count of the caller's newest conversation.
async fn unread(api: &Api) -> i64 {
    api.conversations().await.expect("list")[0].unread_count
}

async fn read_position_feeds_unread_counts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ann, _) = server.register_api("ann").await;
    let (ben, ben_id) = server.register_api("ben").await;
    let id = ann.direct_conversation(ben_id).await.expect("direct").id;
    for i in 0..5 {
        ann.send_message(id, &format!("m{i}"), None)
            .await
            .expect("sent");
    }
    assert_eq!(unread(&ben).await, 5);
    assert_eq!(unread(&ann).await, 0, "your own messages are read");

    let state = ben.mark_read(id, 3).await.expect("read");
    assert_eq!(state.last_read_seq, 3);
    assert_eq!(state.unread_count, 2);
    assert_eq!(unread(&ben).await, 2);
    // Everyone's read position is part of the conversation, in the list and alone.
    let ann_id = ann.me().await.expect("me").id;
    let expected = [
        ReadPosition {
            user_id: ann_id,
            last_read_seq: 5,
        },
        ReadPosition {
            user_id: ben_id,
            last_read_seq: 3,
        },
    ];
    let listed = ann.conversations().await.expect("list");
    assert_eq!(listed[0].read_positions, expected);
    let single = ann.conversation(id).await.expect("conversation");
    assert_eq!(single.read_positions, expected);
    // Never backwards; never past the end.
    let state = ben.mark_read(id, 1).await.expect("read");
    assert_eq!(state.last_read_seq, 3);
    ben.mark_read(id, 6).await.refused(400, "invalid_seq");
    ben.mark_read(id, 5).await.expect("read");
    assert_eq!(unread(&ben).await, 0);
    // Replying marks everything before it as read.
    ann.send_message(id, "more", None).await.expect("sent");
    assert_eq!(unread(&ben).await, 1);
    ben.send_message(id, "reply", None).await.expect("sent");
    assert_eq!(unread(&ben).await, 0);
    assert_eq!(unread(&ann).await, 1);
}
