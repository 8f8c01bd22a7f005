//! The operator's subcommands of `chatapp-server`, run against the same database as a
//! server (which may be running): `chatapp-server [FLAGS] backup FILE`. Human output by
//! default, `--json` for scripts. With no subcommand the binary serves.

use std::{path::PathBuf, str::FromStr};

use anyhow::Context;
use serde::Serialize;
use sqlx::{ConnectOptions, Connection, sqlite::SqliteConnectOptions};

use crate::Config;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Accounts: list, create, reset a password, grant or revoke admin, disable, enable.
    Users {
        #[command(subcommand)]
        action: UsersCommand,
        /// Print the result as JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Invites (for `--registration invite`): create (prints the link), list, revoke.
    Invites {
        #[command(subcommand)]
        action: InvitesCommand,
        /// Print the result as JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// A consistent snapshot of the SQLite database, taken while the server runs (SQLite's
    /// `VACUUM INTO`: one read transaction, so it holds every message committed before it
    /// began and nothing half-written), checked, and beside it `FILE.blobs`: the blob
    /// files it refers to, relative to the data directory, for
    /// `rsync --files-from=FILE.blobs DATA_DIR/ BACKUP_DIR/`. For PostgreSQL use
    /// `pg_dump` (the README says how).
    Backup {
        /// Where to write the snapshot (must not exist).
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// Every account, oldest first.
    List,
    /// Creates an account; its password is read from standard input with
    /// `--password-stdin`, else generated and printed once.
    Create {
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Make it an admin.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sets a new password (from standard input with `--password-stdin`, else generated and
    /// printed once) and ends every session of the account.
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Makes an account an admin.
    GrantAdmin { username: String },
    /// Makes an account an admin no more.
    RevokeAdmin { username: String },
    /// Disables an account: it cannot sign in, and every session of it ends (its open
    /// connections close at once on PostgreSQL, within a minute on SQLite).
    Disable { username: String },
    /// Re-enables a disabled account.
    Enable { username: String },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum InvitesCommand {
    /// Makes an invite and prints its link (`--public-origin`'s, else the code's path).
    Create {
        /// How many accounts it may create.
        #[arg(long, default_value_t = 1)]
        uses: i64,
        /// Hours until it expires (at most a year).
        #[arg(long, default_value_t = crate::admin::DEFAULT_INVITE_HOURS)]
        expires_in_hours: i64,
    },
    /// The newest invites first.
    List,
    /// Revokes an invite by its id.
    Revoke { id: i64 },
}

/// An invite as the CLI shows it.
#[derive(Debug, Serialize)]
pub struct InviteLine {
    pub id: i64,
    pub code: String,
    /// `PUBLIC_ORIGIN/#/invite/CODE`, or `/#/invite/CODE` without `--public-origin`.
    pub link: String,
    pub uses: i64,
    pub max_uses: i64,
    pub state: chatapp_protocol::InviteState,
    /// RFC 3339.
    pub expires_at: String,
}

impl InviteLine {
    fn of(config: &Config, invite: &crate::store::InviteRow) -> Self {
        let origin = config
            .public_origin
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        Self {
            id: invite.id,
            code: invite.code.clone(),
            link: format!("{origin}/#/invite/{}", invite.code),
            uses: invite.uses,
            max_uses: invite.max_uses,
            state: invite.state(crate::store::now_ms()),
            expires_at: crate::store::time_of(invite.expires_at)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }

    fn human(&self) -> String {
        let state = serde_json::to_value(self.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!(
            "{:>6}  {}  {}/{} used  {state}  expires {}",
            self.id, self.link, self.uses, self.max_uses, self.expires_at
        )
    }
}

async fn invites(config: &Config, action: InvitesCommand, json: bool) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(&config.effective_database_url()).await?;
    let rows = match action {
        InvitesCommand::Create {
            uses,
            expires_in_hours,
        } => {
            let uses = crate::admin::invite_uses(Some(uses)).map_err(refused)?;
            let expires_at =
                crate::admin::invite_expiry(Some(expires_in_hours)).map_err(refused)?;
            vec![
                store
                    .create_invite(None, &crate::admin::new_invite_code(), uses, expires_at)
                    .await?,
            ]
        }
        InvitesCommand::List => store.invites(1000).await?,
        InvitesCommand::Revoke { id } => {
            vec![
                store
                    .revoke_invite(None, id)
                    .await
                    .map_err(|err| match err {
                        crate::store::StoreError::NotFound => anyhow::anyhow!("no invite {id}"),
                        other => other.into(),
                    })?,
            ]
        }
    };
    store.close().await;
    let lines: Vec<InviteLine> = rows.iter().map(|i| InviteLine::of(config, i)).collect();
    if json {
        println!("{}", serde_json::to_string(&lines)?);
    } else {
        if config.public_origin.is_none() && !lines.is_empty() {
            eprintln!(
                "(no --public-origin: links are shown from their path; put the server's address in front)"
            );
        }
        for line in &lines {
            println!("{}", line.human());
        }
    }
    Ok(())
}

/// Ends sessions the CLI deleted: on PostgreSQL every instance closes their connections at
/// once; on SQLite the server does within a minute.
async fn sessions_ended(config: &Config, ended: &[i64]) -> anyhow::Result<()> {
    let url = config.effective_database_url();
    if !ended.is_empty() && (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        crate::events::sessions_ended_from_outside(&url, ended).await?;
    }
    Ok(())
}

/// An account as the CLI shows it.
#[derive(Debug, Serialize)]
pub struct UserLine {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub admin: bool,
    pub disabled: bool,
    /// Set when the CLI made the password (create, reset-password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl UserLine {
    fn of(user: &crate::store::UserRow, password: Option<String>) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            admin: user.is_admin(),
            disabled: user.disabled_at.is_some(),
            password,
        }
    }

    fn human(&self) -> String {
        let mut line = format!(
            "{:>6}  {:<20} {:<32} {}",
            self.id, self.username, self.email, self.display_name
        );
        if self.admin {
            line.push_str("  [admin]");
        }
        if self.disabled {
            line.push_str("  [disabled]");
        }
        if let Some(password) = &self.password {
            line.push_str(&format!("\n        password: {password}"));
        }
        line
    }
}

/// Prints `lines` as JSON (one array) or one per line.
fn print_users(lines: &[UserLine], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(lines)?);
    } else {
        for line in lines {
            println!("{}", line.human());
        }
    }
    Ok(())
}

/// The password to set: standard input's first line, or a new random one (returned to be
/// shown, as nobody else knows it).
fn password(from_stdin: bool) -> anyhow::Result<(String, Option<String>)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        return Ok((password, None));
    }
    let password = crate::auth::password::generate();
    Ok((password.clone(), Some(password)))
}

/// The API's refusal as an error for the operator.
fn refused(err: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

async fn users(config: &Config, action: UsersCommand, json: bool) -> anyhow::Result<()> {
    use crate::store::{NewUser, StoreError};
    let store = crate::store::Store::connect(&config.effective_database_url()).await?;
    let find = async |username: &str| -> anyhow::Result<crate::store::UserRow> {
        store
            .user_by_login(&crate::text::normalize_login(username))
            .await?
            .with_context(|| format!("no account {username}"))
    };
    let disable = matches!(action, UsersCommand::Disable { .. });
    let lines = match action {
        UsersCommand::List => store
            .list_users()
            .await?
            .iter()
            .map(|u| UserLine::of(u, None))
            .collect(),
        UsersCommand::Create {
            username,
            email,
            display_name,
            admin,
            password_stdin,
        } => {
            crate::users::validate_username(&username).map_err(refused)?;
            let email = crate::text::normalize_email(&email);
            crate::users::validate_email(&email).map_err(refused)?;
            let display_name =
                crate::users::clean_display_name(display_name.as_deref().unwrap_or(&username))
                    .map_err(refused)?;
            let (password, shown) = password(password_stdin)?;
            crate::users::validate_password(&password).map_err(refused)?;
            let hash = crate::auth::password::hash(password)
                .await
                .map_err(refused)?;
            let user = store
                .create_user(NewUser {
                    username: &username,
                    email: &email,
                    display_name: &display_name,
                    password_hash: &hash,
                    admin,
                    invite: None,
                })
                .await
                .map_err(|err| match err {
                    StoreError::Conflict(_, message) => anyhow::anyhow!(message),
                    other => other.into(),
                })?;
            store
                .record_account_created(None, user.id, user.is_admin())
                .await?;
            vec![UserLine::of(&user, shown)]
        }
        UsersCommand::ResetPassword {
            username,
            password_stdin,
        } => {
            let user = find(&username).await?;
            let (password, shown) = password(password_stdin)?;
            crate::users::validate_password(&password).map_err(refused)?;
            let hash = crate::auth::password::hash(password)
                .await
                .map_err(refused)?;
            let ended = store.reset_password(None, user.id, &hash).await?;
            sessions_ended(config, &ended).await?;
            if !json {
                println!("ended {} sessions", ended.len());
            }
            vec![UserLine::of(&user, shown)]
        }
        UsersCommand::GrantAdmin { username } => {
            let user = find(&username).await?;
            vec![UserLine::of(
                &store.set_admin(None, user.id, true).await?,
                None,
            )]
        }
        UsersCommand::RevokeAdmin { username } => {
            let user = find(&username).await?;
            vec![UserLine::of(
                &store.set_admin(None, user.id, false).await?,
                None,
            )]
        }
        UsersCommand::Disable { username } | UsersCommand::Enable { username } => {
            let user = find(&username).await?;
            let (user, ended) = store.set_disabled(None, user.id, disable).await?;
            sessions_ended(config, &ended).await?;
            if !json && disable {
                println!("ended {} sessions", ended.len());
            }
            vec![UserLine::of(&user, None)]
        }
    };
    store.close().await;
    print_users(&lines, json)
}

/// What a backup wrote.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub users: i64,
    pub messages: i64,
    /// The blob files the snapshot refers to, and where their list is.
    pub blobs: usize,
    pub blob_list: PathBuf,
}

/// Runs `command` with `config` (the same flags and environment as the server's).
pub async fn run(config: &Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Users { action, json } => users(config, action, json).await,
        Command::Invites { action, json } => invites(config, action, json).await,
        Command::Backup { file, json } => {
            let report = backup(config, &file).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "backed up {} users and {} messages to {} ({} bytes); {} blob files listed in {}",
                    report.users,
                    report.messages,
                    report.file.display(),
                    report.bytes,
                    report.blobs,
                    report.blob_list.display()
                );
            }
            Ok(())
        }
    }
}

/// Takes the snapshot of the SQLite database to `file` and lists its blobs.
pub async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<BackupReport> {
    let url = config.effective_database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        anyhow::bail!(
            "backup copies a SQLite database; for PostgreSQL use pg_dump, e.g. \
             `pg_dump --format=custom --file=chatapp.dump \"$DATABASE_URL\"` (README: backup and restore)"
        );
    }
    anyhow::ensure!(
        !file.exists(),
        "{} exists already; give a new file",
        file.display()
    );
    let target = file
        .to_str()
        .context("the backup file's path must be UTF-8")?
        .to_owned();
    // The server's own database, as it is: no migrations, nothing created.
    let mut db = SqliteConnectOptions::from_str(&url)
        .context("parsing the SQLite URL")?
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("opening the database {url}"))?;
    sqlx::query("VACUUM INTO $1")
        .bind(&target)
        .execute(&mut db)
        .await
        .with_context(|| format!("writing the snapshot to {target}"))?;
    db.close().await?;

    // Read back from the snapshot itself: whole, and what it refers to.
    let mut copy = SqliteConnectOptions::from_str(&format!("sqlite://{target}"))?
        .read_only(true)
        .connect()
        .await
        .context("opening the snapshot")?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut copy)
        .await?;
    anyhow::ensure!(check == "ok", "the snapshot is damaged: {check}");
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut copy)
        .await?;
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut copy)
        .await?;
    let blob_ids: Vec<String> = sqlx::query_scalar("SELECT id FROM files ORDER BY id")
        .fetch_all(&mut copy)
        .await?;
    copy.close().await?;

    let blob_list = PathBuf::from(format!("{target}.blobs"));
    let listing: String = blob_ids
        .iter()
        .filter_map(|id| crate::media::blobs::relative_path(id))
        .map(|path| format!("{}\n", path.display()))
        .collect();
    std::fs::write(&blob_list, listing)
        .with_context(|| format!("writing {}", blob_list.display()))?;
    Ok(BackupReport {
        file: file.to_owned(),
        bytes: std::fs::metadata(file)?.len(),
        users,
        messages,
        blobs: blob_ids.len(),
        blob_list,
    })
}
