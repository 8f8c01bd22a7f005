//! chatapp-bench: a load generator for chatapp-server.
//!
//! It starts the server binary (SQLite in a temporary data dir, or a fresh PostgreSQL
//! database) or, with `--backend relay`, the reference for what this machine can do: a
//! bare in-memory relay (`chatapp-bench relay`) with no persistence. It drives either with
//! the same load from many WebSocket connections and prints delivery latency
//! (HdrHistogram), throughput, errors, server CPU and memory, and the machine's total CPU
//! (the generator shares it).
//!
//! ```text
//! cargo build --release -p chatapp-server -p chatapp-bench
//! target/release/chatapp-bench load --backend sqlite --rates 1000,2000,4000
//! target/release/chatapp-bench idle --connections 10000
//! target/release/chatapp-bench storm --clients 1000
//! ```

mod client;
mod procstat;
mod relay;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use chatapp_client::{Api, Socket};
use chatapp_protocol::{RegisterRequest, ServerEvent};
use clap::{Parser, Subcommand, ValueEnum};
use client::{Stats, Step, Target};
use futures_util::{StreamExt, stream};
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "chatapp-bench", about = "Load generator for chatapp-server")]
struct Cli {
    /// The server binary (default: chatapp-server next to this program).
    #[arg(long, global = true)]
    server_bin: Option<std::path::PathBuf>,
    /// PostgreSQL database URL used to create a fresh database for `--backend postgres`.
    #[arg(
        long,
        global = true,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_admin_url: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Backend {
    Sqlite,
    Postgres,
    /// The bare in-memory relay only.
    Relay,
}

#[derive(Subcommand)]
enum Cmd {
    /// Users in groups send at increasing total rates; each step reports latency and throughput.
    Load {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 20)]
        group_size: usize,
        /// Total sends per second for each step.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "500,1000,2000,3000,4500,6000,8000,10000"
        )]
        rates: Vec<f64>,
        #[arg(long, default_value_t = 10)]
        step_secs: u64,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
        /// Stop after the first step whose delivery p99 exceeds this.
        #[arg(long, default_value_t = 50.0)]
        stop_p99_ms: f64,
    },
    /// Memory of idle connections.
    Idle {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        #[arg(long, default_value_t = 1000)]
        users: usize,
    },
    /// Clients that missed messages all reconnect and resume at once.
    Storm {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        group_size: usize,
        /// Messages each group gets while its members are away.
        #[arg(long, default_value_t = 20)]
        missed: usize,
    },
    /// Run the bare relay (used by the other commands).
    Relay {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Many sockets: raise this process's open-file limit (children inherit it).
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    let threads = if matches!(cli.command, Cmd::Relay { .. }) {
        2
    } else {
        1
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    print_machine();
    match cli.command {
        Cmd::Relay { listen } => relay::serve(listen).await,
        Cmd::Load {
            backend,
            users,
            group_size,
            ref rates,
            step_secs,
            warmup_secs,
            stop_p99_ms,
        } => {
            let server = Server::start(&cli, backend).await?;
            let setup = setup(&server, users, group_size).await?;
            let result = load(&server, &setup, rates, step_secs, warmup_secs, stop_p99_ms).await;
            server.stop().await;
            result
        }
        Cmd::Idle {
            backend,
            connections,
            users,
        } => {
            let server = Server::start(&cli, backend).await?;
            let setup = setup(&server, users, 20).await?;
            let result = idle(&server, &setup, connections).await;
            server.stop().await;
            result
        }
        Cmd::Storm {
            backend,
            clients,
            group_size,
            missed,
        } => {
            let server = Server::start(&cli, backend).await?;
            let setup = setup(&server, clients, group_size).await?;
            let result = storm(&server, &setup, missed).await;
            server.stop().await;
            result
        }
    }
}

fn print_machine() {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    eprintln!(
        "# machine: {cpus} CPUs ({model}), {} GiB",
        mem / 1024 / 1024
    );
}

/// A server (or relay) process started for the run.
struct Server {
    child: Child,
    target: Target,
    backend: Backend,
    /// Base URL for REST (not for the relay).
    base: String,
    _data: tempfile::TempDir,
    database: Option<(String, String)>,
}

impl Server {
    async fn start(cli: &Cli, backend: Backend) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut database = None;
        let mut cmd = if backend == Backend::Relay {
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.args(["relay", "--listen", "127.0.0.1:0"]);
            cmd
        } else {
            let bin = match &cli.server_bin {
                Some(bin) => bin.clone(),
                None => std::env::current_exe()?
                    .parent()
                    .context("program dir")?
                    .join("chatapp-server"),
            };
            anyhow::ensure!(
                bin.exists(),
                "{} not found: build it (cargo build --release -p chatapp-server) or pass --server-bin",
                bin.display()
            );
            let mut cmd = Command::new(bin);
            cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
                .arg(data.path())
                .args([
                    "--auth-rate-per-account",
                    "0",
                    "--auth-rate-per-address",
                    "0",
                ])
                .args([
                    "--ws-frames-per-second",
                    "1000000",
                    "--ws-frames-burst",
                    "1000000",
                    "--send-rate-per-user",
                    "0",
                    "--ws-max-per-address",
                    "0",
                ])
                .env(
                    "RUST_LOG",
                    std::env::var("CHATAPP_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
                );
            if backend == Backend::Postgres {
                let name = format!("chatapp_bench_{}", std::process::id());
                admin_sql(
                    &cli.postgres_admin_url,
                    &format!("DROP DATABASE IF EXISTS {name}"),
                )
                .await?;
                admin_sql(&cli.postgres_admin_url, &format!("CREATE DATABASE {name}")).await?;
                let base = cli
                    .postgres_admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .context("admin URL")?;
                cmd.args(["--database-url", &format!("{base}/{name}")]);
                database = Some((cli.postgres_admin_url.clone(), name));
            }
            cmd
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().context("server exited")??;
        std::thread::spawn(move || for _ in lines {});
        let base = line
            .strip_prefix("listening on ")
            .context("unexpected first line")?
            .to_owned();
        let addr = base.trim_start_matches("http://").to_owned();
        let target = if backend == Backend::Relay {
            Target::Relay { addr }
        } else {
            Target::Server { addr }
        };
        Ok(Self {
            child,
            target,
            backend,
            base,
            _data: data,
            database,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn stop(mut self) {
        self.terminate();
        if let Some((admin, name)) = self.database.take() {
            let _ = admin_sql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }

    /// SIGTERM and wait (also on the error path, so no server outlives the run).
    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

async fn admin_sql(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let status = Command::new("psql")
        .args([admin_url, "-qAtc", sql])
        .status()
        .context("running psql")?;
    anyhow::ensure!(status.success(), "psql failed: {sql}");
    Ok(())
}

/// Users, their tokens and group conversations.
struct Setup {
    users: Vec<(i64, String)>,
    /// For each user, the conversation they send into.
    conversation_of: Vec<i64>,
}

async fn setup(server: &Server, users: usize, group_size: usize) -> anyhow::Result<Setup> {
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
        });
    }
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
                    })
                    .await?;
                Ok((auth.user.id, api))
            }
        })
        .buffered(4)
        .collect()
        .await;
    let accounts: Vec<(i64, Api)> = registered.into_iter().collect::<anyhow::Result<_>>()?;
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
    let users_list: Vec<(i64, String)> = accounts
        .iter()
        .map(|(id, api)| (*id, api.token().unwrap_or_default()))
        .collect();
    eprintln!(
        "# set-up: {} users in groups of {group_size} in {:.1} s",
        users_list.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Setup {
        users: users_list,
        conversation_of,
    })
}

async fn connect_all(
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

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn load(
    server: &Server,
    setup: &Setup,
    rates: &[f64],
    step_secs: u64,
    warmup_secs: u64,
    stop_p99_ms: f64,
) -> anyhow::Result<()> {
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
            setup.conversation_of[i],
            epoch,
            steps_rx.clone(),
            stats,
            phase,
        ));
    }
    let group = setup.users.len()
        / setup
            .conversation_of
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            .max(1);
    println!(
        "\n## load: {:?}, {n} connections, groups of {group}, {step_secs} s steps ({warmup_secs} s warm-up)",
        server.backend
    );
    println!(
        "| target sends/s | sends/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | ack p99 ms | errors | server CPU (cores) | machine CPU | server RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
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
        println!(
            "| {rate:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.0}% | {:.0} |",
            total.ack.len() as f64 / window,
            d.len() as f64 / window,
            ms(d.value_at_quantile(0.5)),
            p99,
            ms(d.value_at_quantile(0.999)),
            ms(d.max()),
            ms(total.ack.value_at_quantile(0.99)),
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
    Ok(())
}

async fn idle(server: &Server, setup: &Setup, connections: usize) -> anyhow::Result<()> {
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

async fn storm(server: &Server, setup: &Setup, missed: usize) -> anyhow::Result<()> {
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
