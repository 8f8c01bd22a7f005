//! The `idle` scenario: the server's memory per idle connection, and how much of it the
//! server gives back once the connections close.

use std::time::{Duration, Instant};

use crate::{
    procstat,
    server::Server,
    setup::{Setup, connect_all},
};

pub async fn run(server: &Server, setup: &Setup, connections: usize) -> anyhow::Result<()> {
    // Warm the server's allocator with a first small batch, then measure the rest.
    let warm = connect_all(server, setup, 100.min(connections)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = procstat::rss_kib(server.pid());
    let started = Instant::now();
    let conns = connect_all(server, setup, connections).await?;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = procstat::rss_kib(server.pid());
    let opened = conns.len();
    drop(conns);
    // The server notices the closes, ends the connections' tasks and frees their memory;
    // what the allocator returns to the system shows in RSS.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let closed = procstat::rss_kib(server.pid());
    println!("\n## idle connections: {:?}", server.backend);
    println!(
        "| connections | connect time s | server RSS before MiB | with them open MiB | per idle connection KiB | 12 s after they closed MiB | given back |"
    );
    println!("|---|---|---|---|---|---|---|");
    let grown = after.saturating_sub(before);
    println!(
        "| {opened} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0}% |",
        took.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        grown as f64 / opened.max(1) as f64,
        closed as f64 / 1024.0,
        100.0 * after.saturating_sub(closed) as f64 / grown.max(1) as f64,
    );
    drop(warm);
    Ok(())
}
