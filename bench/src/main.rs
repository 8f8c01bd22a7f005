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
//! target/release/chatapp-bench search --backend postgres
//! ```
//!
//! This file parses the arguments and dispatches. Each scenario has its module (`load`,
//! `idle`, `storm`, `search`; `relay` is the reference relay); `server` starts and stops the
//! process under load, `setup` registers the accounts and opens their connections,
//! `report` holds what every scenario prints, `client` and `procstat` what they measure.

mod client;
mod idle;
mod load;
mod procstat;
mod relay;
mod report;
mod search;
mod server;
mod setup;
mod storm;
mod transcode;

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{server::Server, setup::setup};

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
    /// A million stored messages: full-text search latency through the API, and the send
    /// rate with the search index kept current beside the same without it.
    Search {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        #[arg(long, default_value_t = 1000)]
        conversations: usize,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Members of each conversation (each user is in this many).
        #[arg(long, default_value_t = 20)]
        members: usize,
        /// Searches measured of each kind.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Total sends per second for each step of the send-rate measurement.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,2000,3000,4500,6000,8000"
        )]
        rates: Vec<f64>,
        #[arg(long, default_value_t = 10)]
        step_secs: u64,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
        /// Times the send rate is measured with the index dropped, then restored.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// Chat at a fixed send rate alone, then while 16 MB WAV voice messages are uploaded
    /// (and transcoded to Ogg Opus) back to back.
    Transcode {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 20)]
        group_size: usize,
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        #[arg(long, default_value_t = 30)]
        step_secs: u64,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
        /// Uploads running at once, each back to back.
        #[arg(long, default_value_t = 1)]
        uploaders: usize,
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
    report::print_machine();
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
            let result =
                load::run(&server, &setup, rates, step_secs, warmup_secs, stop_p99_ms).await;
            server.stop().await;
            result.map(drop)
        }
        Cmd::Idle {
            backend,
            connections,
            users,
        } => {
            let server = Server::start(&cli, backend).await?;
            let setup = setup(&server, users, 20).await?;
            let result = idle::run(&server, &setup, connections).await;
            server.stop().await;
            result
        }
        Cmd::Search {
            backend,
            messages,
            conversations,
            users,
            members,
            queries,
            ref rates,
            step_secs,
            warmup_secs,
            rounds,
        } => {
            let mut server = Server::start(&cli, backend).await?;
            let options = search::Options {
                messages,
                conversations,
                users,
                members,
                queries,
                rates: rates.clone(),
                step_secs,
                warmup_secs,
                rounds,
            };
            let result = search::run(&mut server, &options).await;
            server.stop().await;
            result
        }
        Cmd::Transcode {
            backend,
            users,
            group_size,
            rate,
            step_secs,
            warmup_secs,
            uploaders,
        } => {
            let server = Server::start(&cli, backend).await?;
            let setup = setup(&server, users, group_size).await?;
            let result =
                transcode::run(&server, &setup, rate, step_secs, warmup_secs, uploaders).await;
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
            let result = storm::run(&server, &setup, missed).await;
            server.stop().await;
            result
        }
    }
}
