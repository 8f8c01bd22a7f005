//! `chatapp-server`: parse the configuration, set up logging, serve.

use clap::Parser;

/// jemalloc instead of glibc's malloc: its background thread returns memory freed when
/// connections close to the system (BENCHMARKS.md, idle connections).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = chatapp_server::Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(chatapp_server::config::log_filter(
            std::env::var("RUST_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        .init();
    tracing::debug!(?config, "configuration");
    match chatapp_server::serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
