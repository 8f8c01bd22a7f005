//! The `idle` scenario: the server's memory per idle connection.

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
    println!("\n## idle connections: {:?}", server.backend);
    println!(
        "| connections | connect time s | server RSS before MiB | after MiB | per idle connection KiB |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        conns.len(),
        took.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / conns.len() as f64,
    );
    drop(warm);
    drop(conns);
    Ok(())
}
