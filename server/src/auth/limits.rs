//! Rate limits on sign-in and registration, per account and per client address.
//! Both limits are configuration, so a load test or a large organisation can raise them.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::error::ApiError;

pub struct AuthLimits {
    per_account: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Longest account key kept (logins longer than this cannot exist anyway).
const MAX_KEY: usize = 256;

/// `n` attempts at once, refilled evenly over `window`; `None` when `n` is 0.
fn limiter<K: std::hash::Hash + Eq + Clone>(
    n: u32,
    window: Duration,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let burst = NonZeroU32::new(n)?;
    let quota = Quota::with_period(window / n)?.allow_burst(burst);
    Some(RateLimiter::keyed(quota))
}

impl AuthLimits {
    /// Allowances per `window`; `0` disables a limit.
    pub fn new(per_account: u32, per_address: u32, window: Duration) -> Self {
        Self {
            per_account: limiter(per_account, window),
            per_address: limiter(per_address, window),
        }
    }

    /// Counts one attempt from `addr`.
    pub fn check_address(&self, addr: IpAddr) -> Result<(), ApiError> {
        match &self.per_address {
            Some(limiter) => check(limiter, &addr),
            None => Ok(()),
        }
    }

    /// Counts one attempt against `account`, ignoring case. Callers pass one key per
    /// account whichever of its names was typed (sign-in passes the account's username
    /// once it is known, so username and email share one allowance).
    pub fn check_account(&self, account: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_account else {
            return Ok(());
        };
        let mut key = account.trim().to_lowercase();
        if key.len() > MAX_KEY {
            let mut end = MAX_KEY;
            while !key.is_char_boundary(end) {
                end -= 1;
            }
            key.truncate(end);
        }
        check(limiter, &key)
    }

    /// Both checks, address first.
    pub fn check(&self, account: &str, addr: IpAddr) -> Result<(), ApiError> {
        self.check_address(addr)?;
        self.check_account(account)
    }

    /// Forgets keys whose limit has fully recovered, so memory stays bounded.
    pub fn shrink(&self) {
        if let Some(limiter) = &self.per_account {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

pub(crate) fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(limiter.clock().now());
        ApiError::RateLimited {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_account_regardless_of_case_and_address() {
        let limits = AuthLimits::new(2, 0, Duration::from_secs(3600));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limits.check("Alice", a).is_ok());
        assert!(limits.check("alice", b).is_ok());
        match limits.check("ALICE", a) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(limits.check("bob", a).is_ok());
    }

    #[test]
    fn zero_disables_a_limit() {
        let limits = AuthLimits::new(0, 0, Duration::from_secs(60));
        let a: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..100 {
            assert!(limits.check("alice", a).is_ok());
        }
    }
}
