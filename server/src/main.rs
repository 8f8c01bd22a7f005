//! `chatapp-server`: parse the configuration, set up logging, serve, or run an operator
//! subcommand (`chatapp-server backup FILE`, see `cli`) with the same flags.

use clap::Parser;

/// jemalloc instead of glibc's malloc: its background thread returns memory freed when
/// connections close to the system (BENCHMARKS.md, idle connections).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The server's flags, and an operator subcommand or none (serve).
#[derive(Parser)]
#[command(
    name = "chatapp-server",
    version,
    about = "ChatApp server: HTTP API, WebSocket and web UI; with a subcommand, an operator's task against its database",
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    config: chatapp_server::Config,
    #[command(subcommand)]
    command: Option<chatapp_server::cli::Command>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Cli { config, command } = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(chatapp_server::config::log_filter(
            std::env::var("RUST_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        .init();
    tracing::debug!(?config, "configuration");
    let result = match command {
        None => chatapp_server::serve(config).await,
        Some(command) => chatapp_server::cli::run(&config, command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
