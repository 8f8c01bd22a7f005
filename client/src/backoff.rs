//! Reconnection delays: exponential growth with a cap, and jitter so that many clients
//! dropped by one server restart do not all come back in the same instant.

use std::time::Duration;

/// Exponential backoff with jitter. Attempt 1 waits about `initial`, each further attempt
/// `factor` times longer, never more than `max`; the jitter takes up to `jitter` (a
/// fraction) off each delay at random.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
    /// 0.0 (none) to 1.0 (anything from zero to the full delay).
    pub jitter: f64,
}

impl Default for Backoff {
    /// 0.5 s, 1 s, 2 s … up to 30 s, each up to half shorter at random.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before reconnection attempt `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, rand::random::<f64>())
    }

    /// [`Backoff::delay`] with the random draw given (`unit` in `[0, 1)`), for tests.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let max = self.max.as_secs_f64();
        let base = (self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp)).min(max);
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((base * (1.0 - jitter)).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = Backoff::default();
        let no_jitter: Vec<u64> = (1..=9)
            .map(|a| b.delay_with(a, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(
            no_jitter,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(b.delay_with(u32::MAX, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let b = Backoff::default();
        assert_eq!(b.delay_with(3, 1.0), Duration::from_secs(1));
        for attempt in 1..12 {
            let full = b.delay_with(attempt, 0.0);
            for _ in 0..200 {
                let d = b.delay(attempt);
                assert!(
                    d <= full && d >= full / 2,
                    "{d:?} outside [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        let spread: std::collections::HashSet<u128> =
            (0..50).map(|_| b.delay(4).as_micros()).collect();
        assert!(spread.len() > 10, "delays are jittered");
    }
}
