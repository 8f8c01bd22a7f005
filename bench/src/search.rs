//! The `search` scenario (issue 17): a server that has run for a while. One million
//! messages over 1,000 group conversations are stored directly in its database (what a
//! year of a club's chat leaves behind; through the API it would take hours, as every
//! send is its own commit), in overlapping groups so that every member searches 20
//! conversations of the thousand. Then members search through the API, one query at a
//! time, and the send rate at a delivery p99 under 10 ms is measured with the full-text
//! index kept current by every send, beside the same with the index dropped.
//!
//! The text is made of made-up words (consonant–vowel syllables, shortest the most
//! common) drawn with a Zipf distribution, as words are in any language: a few words are
//! in most messages, most words in a handful.

use std::time::{Duration, Instant};

use chatapp_client::Api;
use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    Backend, load,
    report::ms,
    server::Server,
    setup::{Setup, register, tokens},
};

pub struct Options {
    pub messages: usize,
    pub conversations: usize,
    pub users: usize,
    pub members: usize,
    pub queries: usize,
    pub rates: Vec<f64>,
    pub step_secs: u64,
    pub warmup_secs: u64,
    /// How many times the send rate is measured with the index dropped and restored.
    pub rounds: usize,
}

/// The vocabulary's size and Zipf exponent.
const WORDS: usize = 30_000;
const ZIPF: f64 = 1.0;
/// Rows per INSERT, and INSERTs per transaction, while storing.
const ROWS_PER_INSERT: usize = 1000;
const INSERTS_PER_COMMIT: usize = 50;
/// The delivery p99 the send rate is read at.
const SEND_P99_MS: f64 = 10.0;

pub async fn run(server: &mut Server, o: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        server.backend != Backend::Relay,
        "search needs a server with a database"
    );
    anyhow::ensure!(
        o.members <= o.users && o.members >= 2,
        "members must be between 2 and users"
    );
    let started = Instant::now();
    let accounts = register(server, o.users).await?;
    let groups = create_groups(&accounts, o.conversations, o.members).await?;
    eprintln!(
        "# set-up: {} users, {} conversations of {} in {:.1} s",
        accounts.len(),
        groups.len(),
        o.members,
        started.elapsed().as_secs_f64()
    );

    let backend = server.backend;
    let mut stored = Duration::ZERO;
    server
        .restart_after(async |server: &Server| {
            let mut db = server.db().await?;
            stored = store_messages(&mut db, backend, &groups, o.messages).await?;
            Ok(())
        })
        .await?;
    let size = database_size(server).await.unwrap_or_default();
    println!(
        "\n## search: {backend:?}, {} messages in {} conversations of {} members ({} users); each member searches {} conversations",
        o.messages,
        groups.len(),
        o.members,
        o.users,
        o.members * groups.len() / o.users.max(1),
    );
    println!(
        "stored in {:.0} s ({:.0} messages/s, the index kept current by the same triggers or GIN index as every send); {size}",
        stored.as_secs_f64(),
        o.messages as f64 / stored.as_secs_f64().max(1e-9),
    );

    let apis: Vec<Api> = tokens(&accounts)
        .iter()
        .map(|(_, token)| Api::new(&server.base).map(|api| api.with_token(token)))
        .collect::<Result<_, _>>()?;
    search_table(&apis, o.queries).await?;

    // Each user sends into the conversation they own and hears the members' others.
    let setup = Setup {
        users: tokens(&accounts),
        conversation_of: groups.iter().take(o.users).map(|(id, _)| *id).collect(),
        group_size: o.members,
    };
    anyhow::ensure!(
        setup.conversation_of.len() == setup.users.len(),
        "every user needs a conversation of their own: conversations >= users"
    );
    // Kept current, then dropped and restored in turn, `rounds` times, each run on a
    // freshly started server: runs differ by more than the index costs, so each is shown.
    let mut rates = Vec::new();
    let mut watermark = 0;
    let phases = std::iter::once(Phase::Kept)
        .chain((0..o.rounds).flat_map(|_| [Phase::Dropped, Phase::Restored]));
    for phase in phases {
        match phase {
            // Restarted too, as before every other run: each starts from the same state.
            Phase::Kept => server.restart_after(async |_: &Server| Ok(())).await?,
            Phase::Dropped => {
                server
                    .restart_after(async |server: &Server| {
                        watermark = drop_index(&mut server.db().await?, backend).await?;
                        Ok(())
                    })
                    .await?;
            }
            Phase::Restored => {
                server
                    .restart_after(async |server: &Server| {
                        restore_index(&mut server.db().await?, backend, watermark).await
                    })
                    .await?;
            }
        }
        println!("\n### sends with the full-text index {}", phase.name());
        let steps = load::run(
            server,
            &setup,
            &o.rates,
            o.step_secs,
            o.warmup_secs,
            SEND_P99_MS,
        )
        .await?;
        rates.push((phase, load::best_under(&steps, SEND_P99_MS)));
    }
    let dropped: Vec<f64> = rates
        .iter()
        .filter(|(p, _)| *p == Phase::Dropped)
        .map(|(_, r)| *r)
        .collect();
    let dropped = dropped.iter().sum::<f64>() / dropped.len().max(1) as f64;
    println!("\n### send rate at a delivery p99 under {SEND_P99_MS} ms, {backend:?}");
    println!("| full-text index | sends/s | ratio to the mean with it dropped |");
    println!("|---|---|---|");
    for (phase, rate) in &rates {
        println!(
            "| {} | {rate:.0} | {:.2} |",
            phase.name(),
            rate / dropped.max(1e-9)
        );
    }
    Ok(())
}

/// Conversation `k` is owned by user `k % users` with the next `members - 1` users:
/// every user is in `members` conversations (when conversations = users). The
/// conversations' ids and member ids.
async fn create_groups(
    accounts: &[(i64, Api)],
    conversations: usize,
    members: usize,
) -> anyhow::Result<Vec<(i64, Vec<i64>)>> {
    let n = accounts.len();
    let created: Vec<anyhow::Result<(i64, Vec<i64>)>> = stream::iter(0..conversations)
        .map(|k| async move {
            let ids: Vec<i64> = (0..members).map(|j| accounts[(k + j) % n].0).collect();
            let conversation = accounts[k % n]
                .1
                .create_group(&format!("club {k}"), &ids[1..])
                .await?;
            Ok((conversation.id, ids))
        })
        .buffered(8)
        .collect()
        .await;
    created.into_iter().collect()
}

/// Word `rank` of the vocabulary: 70 one-syllable words first, then two, then three.
fn word(rank: usize) -> String {
    const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let syllables = CONSONANTS.len() * VOWELS.len();
    let (len, mut n) = if rank < syllables {
        (1, rank)
    } else if rank < syllables + syllables * syllables {
        (2, rank - syllables)
    } else {
        (3, rank - syllables - syllables * syllables)
    };
    let mut s = String::with_capacity(2 * len);
    for _ in 0..len {
        let syllable = n % syllables;
        n /= syllables;
        s.push(char::from(CONSONANTS[syllable / VOWELS.len()]));
        s.push(char::from(VOWELS[syllable % VOWELS.len()]));
    }
    s
}

/// Draws word ranks with a Zipf distribution.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(words: usize, exponent: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=words)
            .map(|r| {
                total += 1.0 / (r as f64).powf(exponent);
                total
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut StdRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random::<f64>() * total;
        self.cumulative.partition_point(|&c| c < x)
    }
}

/// Stores `messages` text messages, spread evenly in time over the past year, each in a
/// random conversation from a random member, 1 to 20 words; then sets every
/// conversation's last seq and every member's read position to its end. How long it
/// took.
async fn store_messages(
    db: &mut sqlx::AnyConnection,
    backend: Backend,
    groups: &[(i64, Vec<i64>)],
    messages: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(17);
    let zipf = Zipf::new(WORDS, ZIPF);
    let year_ms: i64 = 365 * 24 * 3600 * 1000;
    let now = chrono_ms();
    let first = now - year_ms;
    let step = year_ms / i64::try_from(messages.max(1))?;
    let mut seqs = vec![0i64; groups.len()];
    let mut stored = 0;
    while stored < messages {
        sqlx::raw_sql("BEGIN").execute(&mut *db).await?;
        for _ in 0..INSERTS_PER_COMMIT {
            if stored >= messages {
                break;
            }
            let rows = ROWS_PER_INSERT.min(messages - stored);
            let mut sql = String::with_capacity(rows * 100);
            sql.push_str(
                "INSERT INTO messages (conversation_id, seq, sender_id, kind, body, created_at) VALUES ",
            );
            for i in 0..rows {
                let g = rng.random_range(0..groups.len());
                let (conversation, members) = &groups[g];
                seqs[g] += 1;
                let sender = members[rng.random_range(0..members.len())];
                let words = rng.random_range(1..=20);
                let body = (0..words)
                    .map(|_| word(zipf.sample(&mut rng)))
                    .collect::<Vec<_>>()
                    .join(" ");
                let at = first + i64::try_from(stored + i)? * step;
                if i > 0 {
                    sql.push(',');
                }
                // The body is letters and spaces only: safe as a literal.
                sql.push_str(&format!(
                    "({conversation}, {}, {sender}, 'text', '{body}', {at})",
                    seqs[g]
                ));
            }
            sqlx::raw_sql(&sql).execute(&mut *db).await?;
            stored += rows;
        }
        sqlx::raw_sql("COMMIT").execute(&mut *db).await?;
        if stored % 100_000 < ROWS_PER_INSERT * INSERTS_PER_COMMIT {
            eprintln!(
                "# stored {stored} messages in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    sqlx::raw_sql(&format!(
        "UPDATE conversations SET last_seq = (SELECT COALESCE(MAX(seq), 0) FROM messages m \
         WHERE m.conversation_id = conversations.id), last_activity_at = {now}; \
         UPDATE members SET last_read_seq = (SELECT last_seq FROM conversations c \
         WHERE c.id = members.conversation_id)"
    ))
    .execute(&mut *db)
    .await?;
    let elapsed = started.elapsed();
    // The state of a server that has run for a while, not of one that has just taken a
    // million rows: on PostgreSQL, what autovacuum does after a bulk of inserts (the
    // statistics, the visibility map) and a checkpoint; on SQLite, the WAL copied into the
    // database (else the server's checkpoints copy 150 MB under the first measurement).
    let settle: &[&str] = match backend {
        // One statement each: VACUUM cannot run in the transaction a list would be.
        Backend::Postgres => &["VACUUM ANALYZE", "CHECKPOINT"],
        _ => &["PRAGMA wal_checkpoint(TRUNCATE)"],
    };
    if backend == Backend::Sqlite {
        // FTS5 merges its segments a little at every write; a server that has run for a
        // while has done the merges a bulk load leaves pending.
        settle_fts(db).await?;
    }
    for sql in settle {
        sqlx::raw_sql(sql).execute(&mut *db).await?;
    }
    Ok(elapsed)
}

/// Runs FTS5's incremental merge until it finds nothing left to merge.
async fn settle_fts(db: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    use sqlx::Row;
    let total = async |db: &mut sqlx::AnyConnection| -> anyhow::Result<i64> {
        Ok(sqlx::query("SELECT total_changes()")
            .fetch_one(&mut *db)
            .await?
            .try_get(0)?)
    };
    for _ in 0..1000 {
        let before = total(db).await?;
        sqlx::raw_sql("INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', 1000)")
            .execute(&mut *db)
            .await?;
        // The command itself counts as one change; more means it merged something.
        if total(db).await? - before <= 1 {
            break;
        }
    }
    Ok(())
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

/// The database's size on disk, and the full-text index's share where the database says.
async fn database_size(server: &Server) -> anyhow::Result<String> {
    use sqlx::Row;
    let mut db = server.db().await?;
    Ok(match server.backend {
        Backend::Postgres => {
            let row = sqlx::query(
                "SELECT pg_database_size(current_database())::BIGINT, \
                 pg_relation_size('messages_search')::BIGINT",
            )
            .fetch_one(&mut db)
            .await?;
            format!(
                "database {:.0} MiB, GIN index {:.0} MiB",
                mib(row.try_get(0)?),
                mib(row.try_get(1)?)
            )
        }
        _ => {
            let row = sqlx::query(
                "SELECT (SELECT page_count FROM pragma_page_count()) * \
                 (SELECT page_size FROM pragma_page_size())",
            )
            .fetch_one(&mut db)
            .await?;
            format!("database {:.0} MiB", mib(row.try_get(0)?))
        }
    })
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Kept,
    Dropped,
    Restored,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Kept => "kept current",
            Self::Dropped => "dropped",
            Self::Restored => "restored, kept current",
        }
    }
}

/// Drops what keeps the full-text index current on every send. The last message id it
/// covers.
async fn drop_index(db: &mut sqlx::AnyConnection, backend: Backend) -> anyhow::Result<i64> {
    use sqlx::Row;
    let last: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM messages")
        .fetch_one(&mut *db)
        .await?
        .try_get(0)?;
    let sql = match backend {
        // The words' column too: every insert computes it for the index alone.
        Backend::Postgres => {
            "DROP INDEX messages_search; ALTER TABLE messages DROP COLUMN body_words"
        }
        _ => {
            "DROP TRIGGER messages_fts_insert; DROP TRIGGER messages_fts_update; \
             DROP TRIGGER messages_fts_delete"
        }
    };
    sqlx::raw_sql(sql).execute(db).await?;
    Ok(last)
}

/// Puts the index back as the migration made it, with the messages sent while it was
/// dropped (ids above `watermark`).
async fn restore_index(
    db: &mut sqlx::AnyConnection,
    backend: Backend,
    watermark: i64,
) -> anyhow::Result<()> {
    let sql = match backend {
        Backend::Postgres => {
            include_str!("../../migrations/postgres/0008_search_words.sql").to_owned()
        }
        _ => {
            let migration = include_str!("../../migrations/sqlite/0007_search.sql");
            let triggers = &migration[migration.find("CREATE TRIGGER").unwrap_or(0)..];
            format!(
                "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages \
                 WHERE id > {watermark} AND body <> ''; {triggers}"
            )
        }
    };
    sqlx::raw_sql(&sql).execute(db).await?;
    Ok(())
}

/// A kind of query, and how to make one.
struct QueryKind {
    name: &'static str,
    make: fn(&mut StdRng) -> String,
    /// Ask for the second page (before the first page's last id).
    second_page: bool,
}

const QUERY_KINDS: &[QueryKind] = &[
    QueryKind {
        name: "one of the 10 commonest words",
        make: |rng| word(rng.random_range(0..10)),
        second_page: false,
    },
    QueryKind {
        name: "the same, second page",
        make: |rng| word(rng.random_range(0..10)),
        second_page: true,
    },
    QueryKind {
        name: "a word of rank 100 to 1,000",
        make: |rng| word(rng.random_range(100..1000)),
        second_page: false,
    },
    QueryKind {
        name: "a rare word (rank 10,000 to 30,000)",
        make: |rng| word(rng.random_range(10_000..WORDS)),
        second_page: false,
    },
    QueryKind {
        name: "two words (ranks < 100 and 100 to 1,000)",
        make: |rng| {
            format!(
                "{} {}",
                word(rng.random_range(0..100)),
                word(rng.random_range(100..1000))
            )
        },
        second_page: false,
    },
    QueryKind {
        name: "a prefix of 3 letters",
        make: |rng| word(rng.random_range(70..1000))[..3].to_owned(),
        second_page: false,
    },
    QueryKind {
        name: "two letters (a whole word: prefixes start at three)",
        make: |rng| word(rng.random_range(0..70)),
        second_page: false,
    },
    QueryKind {
        name: "a word no message has",
        make: |rng| format!("xq{}", rng.random_range(0..1000)),
        second_page: false,
    },
];

/// Searches of each kind by random members, one at a time (after a few not measured):
/// latency through the API, and how many results a page had.
async fn search_table(apis: &[Api], queries: usize) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(23);
    println!("\n### search through the API, one query at a time, {queries} of each kind");
    println!("| query | example | results per page | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for kind in QUERY_KINDS {
        let mut latency = Histogram::<u64>::new(3)?;
        let mut results = 0usize;
        let example = (kind.make)(&mut rng);
        for i in 0..queries + 10 {
            let api = &apis[rng.random_range(0..apis.len())];
            let q = (kind.make)(&mut rng);
            let before = if kind.second_page {
                api.search(&q, None, None)
                    .await?
                    .messages
                    .last()
                    .map(|m| m.id)
            } else {
                None
            };
            let t = Instant::now();
            let page = api.search(&q, before, None).await?;
            let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
            if i >= 10 {
                latency.record(us.max(1))?;
                results += page.messages.len();
            }
        }
        println!(
            "| {} | `{example}` | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            kind.name,
            results as f64 / queries.max(1) as f64,
            ms(latency.value_at_quantile(0.5)),
            ms(latency.value_at_quantile(0.95)),
            ms(latency.value_at_quantile(0.99)),
            ms(latency.max()),
        );
    }
    Ok(())
}
