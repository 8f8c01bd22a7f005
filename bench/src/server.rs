//! The process under load: chatapp-server as the binary (chatapp-testkit: SQLite in a
//! temporary data dir, or a fresh PostgreSQL database dropped afterwards) or the bare
//! relay, started for the run and stopped with it. A process of its own, so that its CPU
//! and memory are measured apart from the load generator's.

use std::process::{Child, Command, Stdio};

use anyhow::Context;
use chatapp_testkit::{Launch, TestServer};

use crate::{Backend, Cli, client::Target};

/// A server (or relay) process started for the run.
pub struct Server {
    process: Process,
    pub target: Target,
    pub backend: Backend,
    /// Base URL for REST (not for the relay).
    pub base: String,
}

enum Process {
    Relay(Child),
    Server(Box<TestServer>),
}

impl Server {
    pub async fn start(cli: &Cli, backend: Backend) -> anyhow::Result<Self> {
        let (process, base) = match backend {
            Backend::Relay => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.args(["relay", "--listen", "127.0.0.1:0"])
                    .stderr(Stdio::inherit());
                let (child, base) =
                    chatapp_testkit::spawn_listening(&mut cmd).context("starting the relay")?;
                (Process::Relay(child), base)
            }
            Backend::Sqlite | Backend::Postgres => {
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
                let kind = if backend == Backend::Postgres {
                    chatapp_testkit::Backend::Postgres
                } else {
                    chatapp_testkit::Backend::Sqlite
                };
                let server = Launch::new(kind)
                    .binary(bin)
                    .postgres_admin(&cli.postgres_admin_url)
                    .log_level(
                        &std::env::var("CHATAPP_BENCH_SERVER_LOG")
                            .unwrap_or_else(|_| "warn".into()),
                    )
                    // No limit may shape what is measured.
                    .args(&[
                        "--auth-rate-per-account",
                        "0",
                        "--auth-rate-per-address",
                        "0",
                        "--ws-frames-per-second",
                        "1000000",
                        "--ws-frames-burst",
                        "1000000",
                        "--send-rate-per-user",
                        "0",
                        "--ws-max-per-address",
                        "0",
                    ])
                    .start()
                    .await;
                let base = server.base.clone();
                (Process::Server(Box::new(server)), base)
            }
        };
        let addr = base.trim_start_matches("http://").to_owned();
        let target = if backend == Backend::Relay {
            Target::Relay { addr }
        } else {
            Target::Server { addr }
        };
        Ok(Self {
            process,
            target,
            backend,
            base,
        })
    }

    pub fn pid(&self) -> u32 {
        match &self.process {
            Process::Relay(child) => child.id(),
            Process::Server(server) => server.pid(),
        }
    }

    /// A direct connection to its database (the `search` scenario stores its messages
    /// this way).
    pub async fn db(&self) -> anyhow::Result<sqlx::AnyConnection> {
        match &self.process {
            Process::Server(server) => Ok(server.db().await),
            Process::Relay(_) => anyhow::bail!("the relay has no database"),
        }
    }

    /// Stops it, runs `between` (with the server stopped), and starts it again on the same
    /// database (on a new port).
    pub async fn restart_after<F: AsyncFnOnce(&Self) -> anyhow::Result<()>>(
        &mut self,
        between: F,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.process, Process::Server(_)),
            "the relay cannot restart"
        );
        self.terminate();
        between(self).await?;
        if let Process::Server(server) = &mut self.process {
            server.restart();
            self.base = server.base.clone();
            self.target = Target::Server {
                addr: server.addr.clone(),
            };
        }
        Ok(())
    }

    /// Stops it (SIGTERM, then waits) and drops its database.
    pub async fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        match &mut self.process {
            Process::Relay(child) => {
                if matches!(child.try_wait(), Ok(None)) {
                    let _ = sigterm(child);
                    let _ = child.wait();
                }
            }
            Process::Server(server) => {
                if server.is_running() {
                    server.stop();
                }
            }
        }
    }
}

/// SIGTERM to `child`.
fn sigterm(child: &Child) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill").arg(child.id().to_string()).status()
}

/// SIGTERM and wait also on the error path, so that no server outlives the run.
impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}
