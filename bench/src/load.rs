//! The `load` scenario: users in groups send at increasing total rates; each step
//! reports delivery latency, throughput, errors and the server's CPU and memory.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::watch;

use crate::{
    client::{self, Stats, Step},
    procstat,
    report::ms,
    server::Server,
    setup::{Setup, connect_all},
};

pub async fn run(
    server: &Server,
    setup: &Setup,
    rates: &[f64],
    step_secs: u64,
    warmup_secs: u64,
    stop_p99_ms: f64,
) -> anyhow::Result<Vec<StepResult>> {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let conns = connect_all(server, setup, setup.users.len()).await?;
    let n = conns.len();
    let epoch = Instant::now();
    let (steps_tx, steps_rx) = watch::channel(None::<Step>);
    let mut all_stats = Vec::new();
    for (i, ws) in conns.into_iter().enumerate() {
        let stats = Arc::new(Mutex::new(Stats::new()));
        all_stats.push(Arc::clone(&stats));
        let phase = (i as f64 + 0.5) / n as f64;
        tokio::spawn(client::drive(
            ws,
            setup.users[i].0,
            setup.conversation_of[i],
            epoch,
            steps_rx.clone(),
            stats,
            phase,
        ));
    }
    let group = setup.group_size;
    println!(
        "\n## load: {:?}, {n} connections, groups of {group}, {step_secs} s steps ({warmup_secs} s warm-up)",
        server.backend
    );
    println!(
        "| target sends/s | sends/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | ack p99 ms | echoes | errors | server CPU (cores) | machine CPU | server RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for &rate in rates {
        for s in &all_stats {
            *client::lock(s) = Stats::new();
        }
        let start = Instant::now() + Duration::from_millis(200);
        let measure_from = start + Duration::from_secs(warmup_secs);
        let end = start + Duration::from_secs(step_secs);
        steps_tx.send_replace(Some(Step {
            per_conn_rate: rate / n as f64,
            start,
            measure_from,
            end,
            run,
        }));
        tokio::time::sleep_until(measure_from.into()).await;
        let cpu = procstat::CpuMeter::start(server.pid());
        tokio::time::sleep_until(end.into()).await;
        let used = cpu.stop();
        // Let in-flight deliveries land.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut total = Stats::new();
        for s in &all_stats {
            total.add(&client::lock(s));
        }
        let window = (end - measure_from).as_secs_f64();
        let d = &total.delivery;
        let p99 = ms(d.value_at_quantile(0.99));
        let sends = total.ack.len() as f64 / window;
        results.push(StepResult { sends, p99_ms: p99 });
        println!(
            "| {rate:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.2} | {:.0}% | {:.0} |",
            sends,
            d.len() as f64 / window,
            ms(d.value_at_quantile(0.5)),
            p99,
            ms(d.value_at_quantile(0.999)),
            ms(d.max()),
            ms(total.ack.value_at_quantile(0.99)),
            total.echoes,
            total.errors + total.disconnects,
            used.process_cores,
            used.machine_fraction * 100.0,
            procstat::rss_kib(server.pid()) as f64 / 1024.0,
        );
        if p99 > stop_p99_ms || d.is_empty() {
            break;
        }
    }
    steps_tx.send_replace(None);
    Ok(results)
}

/// What one step sustained.
pub struct StepResult {
    /// Sends acknowledged per second.
    pub sends: f64,
    /// Delivery p99.
    pub p99_ms: f64,
}

/// The highest rate sustained with a delivery p99 under `p99_ms` (0 if none).
pub fn best_under(results: &[StepResult], p99_ms: f64) -> f64 {
    results
        .iter()
        .filter(|r| r.p99_ms < p99_ms)
        .map(|r| r.sends)
        .fold(0.0, f64::max)
}
