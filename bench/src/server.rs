//! The process under load: chatapp-server (SQLite in a temporary data dir, or a fresh
//! PostgreSQL database dropped afterwards) or the bare relay, started for the run and
//! stopped with it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use anyhow::Context;

use crate::{Backend, Cli, client::Target};

/// A server (or relay) process started for the run.
pub struct Server {
    child: Child,
    pub target: Target,
    pub backend: Backend,
    /// Base URL for REST (not for the relay).
    pub base: String,
    _data: tempfile::TempDir,
    database: Option<(String, String)>,
}

impl Server {
    pub async fn start(cli: &Cli, backend: Backend) -> anyhow::Result<Self> {
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn stop(mut self) {
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
