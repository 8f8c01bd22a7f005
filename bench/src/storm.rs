//! The `storm` scenario: clients that missed messages all reconnect and resume at once.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chatapp_client::{Api, Socket};
use chatapp_protocol::ServerEvent;

use crate::{Backend, client::Target, procstat, report::ms, server::Server, setup::Setup};

pub async fn run(server: &Server, setup: &Setup, missed: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        server.backend != Backend::Relay,
        "the relay keeps nothing to resume from"
    );
    // Everyone is away; each group gets `missed` messages from its first member.
    let mut firsts: Vec<(i64, String)> = Vec::new();
    for (i, conv) in setup.conversation_of.iter().enumerate() {
        if firsts.last().map(|(c, _)| c) != Some(conv) {
            firsts.push((*conv, setup.users[i].1.clone()));
        }
    }
    let api = Api::new(&server.base)?;
    for (conv, token) in &firsts {
        let sender = api.with_token(token);
        for m in 0..missed {
            sender
                .send_message(*conv, &format!("missed {m}"), None)
                .await?;
        }
    }
    let cpu = procstat::CpuMeter::start(server.pid());
    let started = Instant::now();
    let tasks: Vec<_> = setup
        .users
        .iter()
        .zip(&setup.conversation_of)
        .map(|((id, token), conv)| {
            let target = server.target.clone();
            let token = token.clone();
            let (id, conv) = (*id, *conv);
            tokio::spawn(async move { resume_once(&target, &token, id, conv, started).await })
        })
        .collect();
    let mut times = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut wrong = 0;
    for task in tasks {
        match task.await? {
            Ok((us, got)) if got == missed => {
                let _ = times.record(us.max(1));
            }
            Ok((us, got)) => {
                eprintln!("client got {got} of {missed} missed messages");
                let _ = times.record(us.max(1));
                wrong += 1;
            }
            Err(err) => {
                eprintln!("client failed: {err:#}");
                wrong += 1;
            }
        }
    }
    let total = started.elapsed();
    let used = cpu.stop();
    println!("\n## reconnect storm: {:?}", server.backend);
    println!(
        "| clients | missed each | all synced s | p50 ms | p99 ms | max ms | wrong or failed | server CPU (cores) | machine CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {missed} | {:.2} | {:.1} | {:.1} | {:.1} | {wrong} | {:.2} | {:.0}% |",
        setup.users.len(),
        total.as_secs_f64(),
        ms(times.value_at_quantile(0.5)),
        ms(times.value_at_quantile(0.99)),
        ms(times.max()),
        used.process_cores,
        used.machine_fraction * 100.0,
    );
    Ok(())
}

/// Connects, resumes `conv` from 0, counts replayed messages until `synced`; returns
/// the time from the storm's start and the count.
async fn resume_once(
    target: &Target,
    token: &str,
    user: i64,
    conv: i64,
    started: Instant,
) -> anyhow::Result<(u64, usize)> {
    let Target::Server { addr } = target else {
        anyhow::bail!("server only")
    };
    let _ = user;
    let bearer = format!("Bearer {token}");
    let mut socket = Socket::open(
        &format!("ws://{addr}/api/ws"),
        &[("authorization", &bearer)],
    )
    .await?;
    // `hello` comes back among the replayed events; resume is the first frame sent.
    let replayed = tokio::time::timeout(
        Duration::from_secs(120),
        socket.resume(&BTreeMap::from([(conv, 0)])),
    )
    .await??;
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let got = replayed
        .iter()
        .filter(
            |ev| matches!(ev, ServerEvent::Message { message } if message.conversation_id == conv),
        )
        .count();
    Ok((us, got))
}
