//! Per-user allowances shared by every way in: messages sent (REST and all of the
//! user's WebSockets together) and WebSocket frames (all of the user's sockets).
//! They are kept per instance; behind a proxy that spreads one user over several
//! instances, a user gets each instance's allowance.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{auth::limits::check, config::Config, error::ApiError};

pub struct UserLimits {
    sends: Option<DefaultKeyedRateLimiter<i64>>,
    frames: DefaultKeyedRateLimiter<i64>,
}

impl UserLimits {
    pub fn new(config: &Config) -> Self {
        let sends = NonZeroU32::new(config.send_rate_per_user).map(|rate| {
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(config.send_burst_per_user))
        });
        let frames = RateLimiter::keyed(
            Quota::per_second(config.ws_frames_per_second).allow_burst(config.ws_frames_burst),
        );
        Self { sends, frames }
    }

    /// Counts one message sent by `user_id`; `RateLimited` (with the wait) beyond the
    /// allowance.
    pub fn check_send(&self, user_id: i64) -> Result<(), ApiError> {
        match &self.sends {
            Some(limiter) => check(limiter, &user_id),
            None => Ok(()),
        }
    }

    /// Counts one WebSocket frame from `user_id`; `false` beyond the allowance.
    pub fn check_frame(&self, user_id: i64) -> bool {
        self.frames.check_key(&user_id).is_ok()
    }

    /// Forgets users whose allowance has fully recovered, so memory stays bounded.
    pub fn shrink(&self) {
        if let Some(limiter) = &self.sends {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.frames.retain_recent();
        self.frames.shrink_to_fit();
    }
}
