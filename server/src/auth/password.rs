//! Password hashing with argon2id (random 16-byte salt per hash, PHC strings), on a few
//! dedicated threads that each reuse their own working memory.
//!
//! Hashing is deliberately expensive (19 MiB and tens of milliseconds each). Running it
//! on the general blocking pool let a burst of sign-ins take every core and left
//! hundreds of MiB of freed working memory behind in the allocator; here at most one
//! hash per core runs at a time, extra requests queue, and memory stays at one working
//! buffer per thread.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

enum Job {
    Hash {
        password: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    Verify {
        password: String,
        stored: String,
        reply: oneshot::Sender<Result<bool, String>>,
    },
}

fn queue() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>(1024);
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx))
                .expect("spawning a password-hashing thread");
        }
        tx
    })
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
        match job {
            Some(Job::Hash { password, reply }) => {
                let _ = reply.send(hash_now(&mut memory, password.as_bytes()));
            }
            Some(Job::Verify {
                password,
                stored,
                reply,
            }) => {
                let _ = reply.send(verify_now(&mut memory, password.as_bytes(), &stored));
            }
            None => return,
        }
    }
}

fn compute(
    memory: &mut Vec<Block>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| e.to_string())
}

fn hash_now(memory: &mut Vec<Block>, password: &[u8]) -> Result<String, String> {
    let params = Params::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(memory, &params, password, &salt, &mut out)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

fn verify_now(memory: &mut Vec<Block>, password: &[u8], stored: &str) -> Result<bool, String> {
    let parsed = PasswordHash::new(stored).map_err(|e| e.to_string())?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!("unsupported algorithm {}", parsed.algorithm));
    }
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let salt = parsed.salt.ok_or("no salt")?;
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let expected = parsed.hash.ok_or("no hash")?;
    let mut out = vec![0u8; expected.len()];
    compute(memory, &params, password, salt, &mut out)?;
    Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

async fn run<T>(
    job: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Job,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    queue()
        .send(job(reply))
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("password hashing stopped")))?;
    answer
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("password hashing stopped")))?
        .map_err(|e| ApiError::internal(anyhow::anyhow!("password hashing: {e}")))
}

/// A new PHC string for `password`.
pub async fn hash(password: String) -> Result<String, ApiError> {
    run(|reply| Job::Hash { password, reply }).await
}

/// Whether `password` matches `stored`. With `stored == None` (no such account) a dummy
/// hash is checked so the answer takes as long as for a real account.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let matches = run(|reply| Job::Verify {
        password,
        stored,
        reply,
    })
    .await?;
    Ok(known && matches)
}

/// A new random password (96 bits, 16 URL-safe characters), for an account an admin
/// creates or resets: shown once to whoever asked.
pub fn generate() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// argon2id of a random password nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Gq0Q9QhG+Qe3s8bHk1gLZC7P3b4vPzGdbBq1o0yoQ7Y";

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_and_salts_differ() {
        let a = hash("correct horse".into()).await.expect("hash");
        let b = hash("correct horse".into()).await.expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(a, b);
        assert!(
            verify("correct horse".into(), Some(a.clone()))
                .await
                .expect("verify")
        );
        assert!(!verify("wrong horse".into(), Some(a)).await.expect("verify"));
        assert!(!verify("anything".into(), None).await.expect("verify"));
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings() {
        // Our hash verifies with the argon2 crate's own verifier, and its hash with ours.
        let ours = hash("pw-123456".into()).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"pw-123456", &parsed)
                .is_ok()
        );
        let theirs = {
            use argon2::{PasswordHasher, password_hash::SaltString};
            let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
            Argon2::default()
                .hash_password(b"pw-123456", &salt)
                .expect("hash")
                .to_string()
        };
        assert!(
            verify("pw-123456".into(), Some(theirs))
                .await
                .expect("verify")
        );
    }
}
