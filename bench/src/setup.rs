//! The accounts a scenario uses: users registered and put in groups (or, for the
//! relay, numbered), and their WebSocket connections.

use std::time::Instant;

use chatapp_client::Api;
use chatapp_protocol::RegisterRequest;
use futures_util::{StreamExt, stream};

use crate::{Backend, client, server::Server};

/// Users, their tokens and group conversations.
pub struct Setup {
    pub users: Vec<(i64, String)>,
    /// For each user, the conversation they send into.
    pub conversation_of: Vec<i64>,
    /// Members of each conversation.
    pub group_size: usize,
}

pub async fn setup(server: &Server, users: usize, group_size: usize) -> anyhow::Result<Setup> {
    let started = Instant::now();
    if server.backend == Backend::Relay {
        // No accounts: user i is in group i / group_size.
        let ids: Vec<(i64, String)> = (0..users)
            .map(|i| (i64::try_from(i).unwrap_or(0), String::new()))
            .collect();
        let conversation_of = (0..users)
            .map(|i| i64::try_from(i / group_size).unwrap_or(0))
            .collect();
        return Ok(Setup {
            users: ids,
            conversation_of,
            group_size,
        });
    }
    let accounts = register(server, users).await?;
    let mut conversation_of = vec![0; accounts.len()];
    for (g, chunk) in accounts.chunks(group_size).enumerate() {
        let members: Vec<i64> = chunk.iter().skip(1).map(|(id, _)| *id).collect();
        let id = chunk[0]
            .1
            .create_group(&format!("group {g}"), &members)
            .await?
            .id;
        for i in 0..chunk.len() {
            conversation_of[g * group_size + i] = id;
        }
    }
    eprintln!(
        "# set-up: {} users in groups of {group_size} in {:.1} s",
        accounts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Setup {
        users: tokens(&accounts),
        conversation_of,
        group_size,
    })
}

/// Registers `users` accounts (`user0`, `user1`, …): their ids and signed-in clients.
pub async fn register(server: &Server, users: usize) -> anyhow::Result<Vec<(i64, Api)>> {
    // One connection pool for every account's client.
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let base = server.base.clone();
    let registered: Vec<anyhow::Result<(i64, Api)>> = stream::iter(0..users)
        .map(|i| {
            let api = Api::with_http(&base, http.clone());
            async move {
                let api = api?;
                let auth = api
                    .register(&RegisterRequest {
                        username: format!("user{i}"),
                        email: format!("user{i}@bench.example.org"),
                        password: "bench-password".to_owned(),
                        display_name: None,
                        invite: None,
                    })
                    .await?;
                Ok((auth.user.id, api))
            }
        })
        .buffered(4)
        .collect()
        .await;
    registered.into_iter().collect()
}

/// Each account's id and token.
pub fn tokens(accounts: &[(i64, Api)]) -> Vec<(i64, String)> {
    accounts
        .iter()
        .map(|(id, api)| (*id, api.token().unwrap_or_default()))
        .collect()
}

pub async fn connect_all(
    server: &Server,
    setup: &Setup,
    count: usize,
) -> anyhow::Result<Vec<client::Ws>> {
    let target = server.target.clone();
    let results: Vec<anyhow::Result<client::Ws>> = stream::iter(0..count)
        .map(|i| {
            let target = target.clone();
            let (id, token) = setup.users[i % setup.users.len()].clone();
            let group = setup.conversation_of[i % setup.users.len()];
            async move { client::connect(&target, &token, id, group).await }
        })
        .buffered(64)
        .collect()
        .await;
    results.into_iter().collect()
}
